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

from tests.net import free_port

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
            assert stack.poll() is None and time.monotonic() < deadline, _tails(tmp_path / "up.log")
            time.sleep(0.3)
        # Nothing configured, nothing referenced but unconfigured, no deadline overdue: every check holds.
        assert ready.json()["checks"] == {
            "postgresql": "ok",
            "projections": "ok",
            "temporal": "ok",
            "notifications": "ok",
            "deadlines": "ok",
        }
        assert (
            httpx.get(f"http://127.0.0.1:{api_port}/openapi.json", timeout=5).json()["info"]["title"]
            == "Escalations API"
        )
        console = httpx.get(f"http://127.0.0.1:{api_port}/console", timeout=5)
        assert console.status_code == 200 and "/console/assets/console.js" in console.text
        script = httpx.get(f"http://127.0.0.1:{api_port}/console/assets/console.js", timeout=5)
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        # The example directory is imported: a P1 sent with the customer's id alone reaches a named owner.
        log.flush()
        dsn = next(
            line.split(": ", 1)[1].strip()
            for line in (tmp_path / "up.log").read_text().splitlines()
            if line.startswith("PostgreSQL (embedded): ")
        )
        token = subprocess.run(
            [Path(sys.executable).parent / "escalations", "token", "create", "--role", "service", "--name", "up-test"],
            env={**env, "DATABASE_URL": dsn},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        opened = httpx.post(
            f"http://127.0.0.1:{api_port}/v1/escalations",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "customer": {"id": "acme"},
                "category": "technical",
                "lifecycle_stage": "ongoing_support",
                "severity": "sev1",
                "title": "Checkout down",
                "description": "No payments",
                "source": "customer",
            },
            timeout=30,
        )
        assert opened.status_code == 201, opened.text
        state = opened.json()["state"]
        assert state["team"] == "platform" and state["owner"] in ("ben", "chen") and state["priority"] == "P1"
    finally:
        stack.send_signal(signal.SIGINT)
        status = stack.wait(timeout=60)
    output = (tmp_path / "up.log").read_text()
    assert status == 0, _tails(tmp_path / "up.log")
    assert "Temporal Web UI: http://127.0.0.1:" in output and "Stack stopped." in output
    assert f"Console: http://127.0.0.1:{api_port}/console" in output
    assert (tmp_path / ".data" / "temporal.db").exists() and (tmp_path / ".data" / "pg").is_dir()


def _start_up(tmp_path: Path, name: str, ports: dict[str, int]) -> tuple[subprocess.Popen, Path]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEMPORAL_ADDRESS")}
    env.update(
        ESCALATIONS_DATA_DIR=str(tmp_path / ".data"),
        ESCALATIONS_TEMPORAL_PORT=str(ports["temporal"]),
        ESCALATIONS_TEMPORAL_UI_PORT=str(ports["ui"]),
        ESCALATIONS_API_PORT=str(ports["api"]),
    )
    log_path = tmp_path / f"{name}.log"
    log = open(log_path, "w+")  # noqa: SIM115 - read back by the test
    stack = subprocess.Popen(
        [Path(sys.executable).parent / "escalations", "up"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{ports['api']}/readyz", timeout=2).status_code == 200:
                return stack, log_path
        except httpx.HTTPError:
            pass
        assert stack.poll() is None and time.monotonic() < deadline, _tails(log_path)
        time.sleep(0.3)


def _tails(log_path: Path) -> str:
    """The end of the stack's output and of its Temporal server's log, for a failure's message: when the stack
    stops because the server went away, only the server's log says whether it died or was still starting."""
    server_log = log_path.parent / ".data" / "temporal.log"
    server = server_log.read_text(errors="replace")[-3000:] if server_log.exists() else "(no temporal.log)"
    return f"{log_path.read_text()[-3000:]}\n--- .data/temporal.log ---\n{server}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/status").read_text().count("State:\tZ")


def test_a_killed_stack_leaves_servers_the_next_start_stops_and_says_so(tmp_path: Path) -> None:
    import json

    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    first, _ = _start_up(tmp_path, "first", ports)
    recorded = json.loads((tmp_path / ".data" / "stack.pid").read_text())
    postmaster = int((tmp_path / ".data" / "pg" / "postmaster.pid").read_text().split()[0])
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert _alive(recorded["temporal"]) and _alive(postmaster), "SIGKILL leaves the servers running"

    second, log_path = _start_up(tmp_path, "second", ports)
    try:
        output = log_path.read_text()
        assert f"stopped the Temporal dev server (pid {recorded['temporal']})" in output, _tails(log_path)
        assert f"stopped the embedded PostgreSQL (pid {postmaster})" in output
        assert not _alive(recorded["temporal"]) and not _alive(postmaster)
        now = json.loads((tmp_path / ".data" / "stack.pid").read_text())
        new_postmaster = int((tmp_path / ".data" / "pg" / "postmaster.pid").read_text().split()[0])
    finally:
        second.send_signal(signal.SIGINT)
        status = second.wait(timeout=60)
    assert status == 0, _tails(log_path)
    assert not _alive(now["temporal"]) and not _alive(new_postmaster), "Ctrl-C leaves nothing running"
    assert not (tmp_path / ".data" / "stack.pid").exists()
