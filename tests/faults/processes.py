"""The system's processes, started by a test as real OS processes so a fault is a real fault.

``ManagedProcess`` is one restartable process with its output appended to a log
file; the helpers below start the worker, the projector, the API and a
Temporal dev server backed by an SQLite file (so it can be stopped and
restarted with its state).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from tests.net import free_port
from tests.temporal_fixtures import _binary
from worker import connect_client

ROOT = Path(__file__).resolve().parents[2]
SECONDS_POLICY = ROOT / "tests" / "policies" / "seconds.toml"


class ManagedProcess:
    """One process that a test can SIGKILL, stop and start again; output goes to ``log_path``."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self._argv = argv
        self._env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.pids: list[int] = []  # one per start
        self._seen: dict[str, list] = {}  # wait_for_log's progress through the log, per text

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self._argv, cwd=ROOT, env=self._env, stdout=log, stderr=log)
        self.pids.append(self.process.pid)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly as in a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop within 15 s. Its exit status (negative: the signal that
        ended it), or None if it was not running."""
        if not self.alive():
            return None
        assert self.process is not None
        self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    async def wait_for_log(self, text: str, occurrences: int, timeout: float = 30) -> None:
        """Until ``text`` appears ``occurrences`` times in the log (e.g. once per start). Reads only what was
        written since the last look (a soak's logs grow large)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._count_in_log(text) < occurrences:
            if not self.alive():
                raise AssertionError(f"{self.name} exited; log:\n{self.log_tail()}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.name} did not log {text!r} within {timeout}s")
            await asyncio.sleep(0.05)

    def _count_in_log(self, text: str) -> int:
        seen = self._seen.setdefault(text, [0, 0, b""])  # [occurrences, offset read to, unmatched tail]
        if not self.log_path.exists():
            return 0
        with open(self.log_path, "rb") as log:
            log.seek(seen[1])
            fresh = log.read()
        needle = text.encode()
        chunk = seen[2] + fresh
        seen[0] += chunk.count(needle)
        seen[1] += len(fresh)
        # Keep the end that could be the start of a line still being written.
        seen[2] = chunk[-(len(needle) - 1) :] if len(needle) > 1 and not chunk.endswith(needle) else b""
        return seen[0]

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string (a DSN may already carry ``?host=...``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=urlencode([*parse_qsl(parts.query), *params.items()])))


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def app_env(database_url: str, temporal_address: str, task_queue: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal_address,
        "ESCALATIONS_TASK_QUEUE": task_queue,
        "ESCALATIONS_POLICY": str(SECONDS_POLICY),
        "ESCALATIONS_LOG_LEVEL": "WARNING",
        **extra,
    }


def worker_process(name: str, env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    return ManagedProcess(name, _python(str(ROOT / "worker.py")), env, log_dir / f"{name}.log")


def projector_process(name: str, env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    return ManagedProcess(name, _python("-m", "cli.main", "project"), env, log_dir / f"{name}.log")


def api_process(name: str, env: Mapping[str, str], log_dir: Path, port: int) -> ManagedProcess:
    argv = _python("-m", "cli.main", "api", "--host", "127.0.0.1", "--port", str(port))
    return ManagedProcess(name, argv, env, log_dir / f"{name}.log")


async def wait_until_serving(url: str, process: ManagedProcess, timeout: float = 30) -> None:
    """Poll ``url`` until it answers at all (any status); fail early if the process died."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            if not process.alive():
                raise AssertionError(f"{process.name} exited; log:\n{process.log_tail()}")
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{process.name} did not serve {url} within {timeout}s") from None
                await asyncio.sleep(0.2)


class TemporalDevServer(ManagedProcess):
    """``temporal server start-dev`` on a port of its own, its state in an SQLite file that survives restarts.

    The gRPC port stays the same across restarts (the worker and the clients reconnect to it); the HTTP
    and metrics ports, which nothing here uses, are chosen again at every start, because a port free at
    the first start may be taken by the time of the next (another test's server, or any outgoing
    connection's local port). A start that finds the gRPC port taken is made again a few times, which helps
    when the port's holder is short-lived (a connection's local port), not when a server keeps it."""

    START_ATTEMPTS = 5

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._data_dir = data_dir
        self._log_offset = 0
        super().__init__("temporal", self._command(), os.environ, data_dir / "temporal.log")

    def _command(self) -> list[str]:
        return [
            _binary("temporal"),
            "server",
            "start-dev",
            "--headless",
            "--db-filename",
            str(self._data_dir / "temporal.db"),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--log-level",
            "error",
        ]

    def start(self) -> None:
        self._argv = self._command()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        super().start()

    async def wait_ready(self, timeout: float = 60) -> None:
        """Until the server answers; a start that lost a port race (``address already in use``) is made
        again, a few times, before the test fails."""
        deadline = asyncio.get_running_loop().time() + timeout
        attempts = 1
        while True:
            if not self.alive():
                if "address already in use" in self._log_since_start() and attempts < self.START_ATTEMPTS:
                    attempts += 1
                    await asyncio.sleep(1)
                    self.start()
                    continue
                raise AssertionError(f"the Temporal dev server exited; log:\n{self.log_tail()}")
            try:
                await connect_client(self.address)
                return
            except Exception:  # noqa: BLE001 - any failure means "not yet"
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"the Temporal dev server did not answer within {timeout}s") from None
                await asyncio.sleep(0.3)

    def _log_since_start(self) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")
