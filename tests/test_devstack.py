"""`escalations up` from nothing: Temporal dev server and PostgreSQL from wheels, worker, projector, API; Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api_support import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_escalations_up_serves_the_api_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update(
        ESCALATIONS_DATA_DIR=str(tmp_path / ".data"),
        ESCALATIONS_TEMPORAL_PORT=str(free_port()),
        ESCALATIONS_TEMPORAL_UI_PORT=str(free_port()),
        ESCALATIONS_API_PORT=str(api_port),
    )
    log = open(tmp_path / "up.log", "w+")  # noqa: SIM115 - read back below
    stack = subprocess.Popen(
        [Path(sys.executable).parent / "escalations", "up"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert stack.poll() is None and time.monotonic() < deadline, (tmp_path / "up.log").read_text()[-3000:]
            time.sleep(0.3)
        assert ready.json()["checks"] == {"postgresql": "ok", "projections": "ok", "temporal": "ok"}
        assert (
            httpx.get(f"http://127.0.0.1:{api_port}/openapi.json", timeout=5).json()["info"]["title"]
            == "Escalations API"
        )
        console = httpx.get(f"http://127.0.0.1:{api_port}/console", timeout=5)
        assert console.status_code == 200 and "/console/assets/console.js" in console.text
        script = httpx.get(f"http://127.0.0.1:{api_port}/console/assets/console.js", timeout=5)
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    finally:
        stack.send_signal(signal.SIGINT)
        status = stack.wait(timeout=60)
    output = (tmp_path / "up.log").read_text()
    assert status == 0, output[-3000:]
    assert "Temporal Web UI: http://127.0.0.1:" in output and "Stack stopped." in output
    assert f"Console: http://127.0.0.1:{api_port}/console" in output
    assert (tmp_path / ".data" / "temporal.db").exists() and (tmp_path / ".data" / "pg").is_dir()
