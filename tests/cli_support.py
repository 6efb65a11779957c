"""Running the ``escalations`` command and the offline verifier as their users do: separate processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERIFIER = ROOT / "scripts" / "verify_bundle.py"


def cli(url: str, *args: str | Path, key_file: Path | None = None) -> subprocess.CompletedProcess:
    """``escalations ARGS`` against the database at ``url`` (with the log key file, when given)."""
    env = {**os.environ, "DATABASE_URL": url, "ESCALATIONS_LOG_LEVEL": "WARNING"}
    if key_file is not None:
        env["ESCALATIONS_LOG_KEY_FILE"] = str(key_file)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def keyed_cli(url: str, key_file: Path, *args: str | Path) -> subprocess.CompletedProcess:
    """``cli`` with the log key file."""
    return cli(url, *args, key_file=key_file)


def offline(*args: str | Path) -> subprocess.CompletedProcess:
    """The verifier as an auditor runs it: isolated mode, from outside the repository, so nothing of the
    project is importable."""
    return subprocess.run(
        [sys.executable, "-I", str(VERIFIER), *map(str, args)], capture_output=True, text=True, timeout=60, cwd="/"
    )
