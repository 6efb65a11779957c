"""What an earlier ``escalations up`` left running when it was killed (SIGKILL gives it no chance to stop
its children): found through ``.data/stack.pid`` and PostgreSQL's own ``postmaster.pid``, stopped, and
reported, so a new stack never silently runs on servers nobody will stop."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

PID_FILE = "stack.pid"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(pid: int, sig: signal.Signals, timeout: float = 15) -> bool:
    """Send ``sig`` and wait for ``pid`` to exit; SIGKILL after ``timeout``. True if it is gone."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    time.sleep(0.5)
    return not alive(pid)


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_leftovers(data_dir: Path) -> list[str]:
    """Stop what a killed stack left behind in ``data_dir``; what was done, one line each.

    ``SystemExit`` if the stack that wrote the pid file still runs (two stacks on one data directory).
    """
    done: list[str] = []
    recorded: dict[str, int] = {}
    pid_file = data_dir / PID_FILE
    if pid_file.exists():
        try:
            recorded = {k: int(v) for k, v in json.loads(pid_file.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            recorded = {}
    up = recorded.get("up")
    if up is not None and up != os.getpid() and alive(up):
        raise SystemExit(f"another escalations up (pid {up}) is running on {data_dir}; stop it first (Ctrl-C there)")
    temporal = recorded.get("temporal")
    if temporal is not None and alive(temporal):
        _stop(temporal, signal.SIGTERM)
        done.append(f"stopped the Temporal dev server (pid {temporal}) a killed escalations up left running")
    postmaster = _pid_in(data_dir / "pg" / "postmaster.pid")
    if postmaster is not None and alive(postmaster):
        _stop(postmaster, signal.SIGINT)  # PostgreSQL's fast shutdown
        done.append(f"stopped the embedded PostgreSQL (pid {postmaster}) a killed escalations up left running")
    # The embedded server's own list of the processes using it: a killed stack's pid stays in it, and the
    # server then never stops at the next stack's end (it waits for that process to let go).
    handles = data_dir / "pg" / ".handle_pids.json"
    if handles.exists():
        try:
            users = [int(pid) for pid in json.loads(handles.read_text())]
        except (OSError, ValueError, TypeError):
            users = []
        if not any(alive(pid) for pid in users):
            handles.unlink(missing_ok=True)
    pid_file.unlink(missing_ok=True)
    return done


def record(data_dir: Path, **pids: int) -> None:
    """Write the stack's pid file (the stack itself and the servers it started)."""
    (data_dir / PID_FILE).write_text(json.dumps({"up": os.getpid(), **pids}) + "\n")


def forget(data_dir: Path) -> None:
    (data_dir / PID_FILE).unlink(missing_ok=True)
