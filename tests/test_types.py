"""The static types hold: mypy over the production code, strict on the domain core (pyproject's [tool.mypy])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_mypy_finds_no_error_and_the_core_holds_no_type_ignore() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".data" / "mypy-cache")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ignored = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "workflows" / "core").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "type: ignore" in line
    ]
    assert ignored == []
