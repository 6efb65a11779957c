"""``escalations resurrect``: a workflow for every open case in the event store that Temporal does not run
(after Temporal lost its database; see ``workflows/resurrection.py``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from cli.common import EXIT_OK


def add_resurrect_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "resurrect", help="start the workflow of every open case the store holds and Temporal does not run"
    )
    parser.add_argument("--task-queue", help="the workers' task queue (default: ESCALATIONS_TASK_QUEUE or escalations)")


async def run_resurrect(
    args: argparse.Namespace, pool_factory: Callable[[], Awaitable[Any]], client_factory: Callable[[], Awaitable[Any]]
) -> int:
    from events.store import EventStore
    from worker import Settings
    from workflows.resurrection import resurrect

    task_queue = args.task_queue or Settings.from_env().task_queue
    client = await client_factory()
    pool = await pool_factory()
    try:
        found = await resurrect(client, EventStore(pool), task_queue=task_queue)
    finally:
        await pool.close()
    print(
        json.dumps({"examined": found.examined, "running": found.running, "over": found.over, "started": found.started})
    )
    return EXIT_OK
