"""The Temporal dev server a measurement starts: the binary the project installs, the project's data converter,
and a startup timeout a busy machine meets.

``state_file`` keeps the server's state in that SQLite file with write-ahead logging, as the dev stack does (in
memory it grows by about 200 KiB per open workflow: docs/benchmarks.md, "The Temporal dev server"); without it
the state is in memory, as ``temporal server start-dev`` keeps it by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

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
