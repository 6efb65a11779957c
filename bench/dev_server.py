"""The Temporal dev server a measurement starts: the binary the project installs, the project's data converter,
and a startup timeout a busy machine meets.

``state_file`` keeps the server's state in that SQLite file with write-ahead logging, as the dev stack does (in
memory it grows by about 200 KiB per open workflow: docs/benchmarks.md, "The Temporal dev server"); without it
the state is in memory, as ``temporal server start-dev`` keeps it by default.

``fresh_servers`` gives each side of a deadline scenario a server of its own; ``shared_server`` one server for
all (one the benchmark did not start).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.net import free_port
from cli.devstack import temporal_binary
from workflows.data_converter import data_converter


async def start_dev_server(extra_args: Sequence[str] = (), *, state_file: Path | None = None) -> WorkflowEnvironment:
    """Start a dev server (``extra_args`` appended to its command line); the caller shuts it down."""
    state = ["--db-filename", str(state_file), "--sqlite-pragma", "journal_mode=WAL"] if state_file else []
    return await WorkflowEnvironment.start_local(
        dev_server_extra_args=[*state, *extra_args],
        data_converter=data_converter,
        dev_server_existing_path=temporal_binary(),
        # The SDK's 5 s default is too short for a busy machine; a healthy server answers in under 1 s.
        dev_server_startup_timeout=timedelta(seconds=60),
    )


@dataclass(frozen=True)
class BenchServer:
    """The Temporal server a side of a scenario runs on.

    ``metrics_url``: its Prometheus endpoint (``None``: not reachable; the server's rows are left out).
    ``pid``: set for a server started for this side alone: its CPU and memory are measured from that process
    (not every ``temporal`` process on the machine), and its workflows go with it when the side ends, so the
    side need not end them one by one. ``None``: a server shared with the rest of the run."""

    client: Client
    metrics_url: str | None
    pid: int | None = None

    @property
    def fresh(self) -> bool:
        return self.pid is not None


# Each call gives the server for one side, for as long as the side runs.
ServerFactory = Callable[[], AbstractAsyncContextManager[BenchServer]]


def shared_server(server: BenchServer) -> ServerFactory:
    """Every side on ``server`` (one the benchmark did not start: ``TEMPORAL_ADDRESS``)."""

    @asynccontextmanager
    async def same() -> AsyncIterator[BenchServer]:
        yield server

    return same


def fresh_servers(extra_args: Sequence[str] = ()) -> ServerFactory:
    """Every side on a file-backed dev server of its own, started with the same settings (``extra_args``
    appended) and, when the side ends, shut down with its state deleted.

    Why not one server for both sides: each side then starts on an identical empty server (the second no
    longer inherits the first's history, caches and grown SQLite file), and ending 100,000 background
    workflows one by one, about ten minutes a side at the scale scenario's size, is no longer needed."""

    @asynccontextmanager
    async def fresh() -> AsyncIterator[BenchServer]:
        folder = Path(tempfile.mkdtemp(prefix="esc-bench-temporal-"))
        state_file = folder / "temporal.db"
        metrics_port = free_port()
        try:
            env = await start_dev_server(["--metrics-port", str(metrics_port), *extra_args], state_file=state_file)
            pid: int | None = None
            try:
                pid = _server_pid(state_file)
                yield BenchServer(env.client, f"http://127.0.0.1:{metrics_port}/metrics", pid)
            finally:
                await env.shutdown()
                if pid is not None:
                    _wait_gone(pid)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # gigabytes after the scale scenario

    return fresh


def _wait_gone(pid: int) -> None:
    """Wait for the server process ``pid`` to exit (killed after 60 s): gone before the next side starts, or its
    shutdown would be measured as the next side's load, and its folder is not deleted under it."""
    try:
        process = psutil.Process(pid)
        try:
            process.wait(timeout=60)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    except psutil.NoSuchProcess:
        pass


def _server_pid(state_file: Path) -> int:
    """The dev server process keeping its state in ``state_file`` (its command line names the file)."""
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] == "temporal" and str(state_file) in (process.info["cmdline"] or []):
            return process.pid
    raise RuntimeError(f"no temporal process keeps its state in {state_file}")
