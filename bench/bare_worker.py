"""Baselines for the deadline scenarios: bare workflows that sleep until an instant and run one activity.

``BareDeadlineWorkflow`` sleeps until its instant (given, or ``lead`` after its start),
then runs one local activity that records (due, detected, stored) in PostgreSQL, then
stays open until signalled, as an open case would. ``python -m bench.bare_worker`` hosts
them in a process of their own, so its memory is measured like our worker's.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import asyncpg
from temporalio import activity
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

# The workflow lives in an asyncpg-free module: a workflow module that imports asyncpg makes
# the sandbox load asyncpg's C extension a second time, which crashed this process (invariant 7 of docs/architecture.md).
from bench.baseline_workflows import RECORD, BareDeadlineWorkflow, BareRecord
from observability import gc_pauses, metrics
from worker import Settings

TABLE_SQL = """CREATE TABLE IF NOT EXISTS bench_bare_deadlines (
    workflow_id text NOT NULL, seq int NOT NULL, due_at timestamptz NOT NULL, detected_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (workflow_id, seq))"""


class BareActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name=RECORD)
    async def record(self, record: BareRecord) -> str:
        """Insert the record; the clock just before (the stamp the spread scenario splits a wake-up's task at,
        as our store's ``recorded_at``)."""
        stamp = datetime.now(UTC).isoformat()
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO bench_bare_deadlines (workflow_id, seq, due_at, detected_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING",
                record.workflow_id,
                record.seq,
                record.due_at,
                record.detected_at,
            )
        return stamp


def bare_worker(client, pool: asyncpg.Pool, task_queue: str) -> Worker:  # noqa: ANN001 - temporalio Client
    # Cached workflows and tasks in flight as our worker reads them: production's, or what a scenario sets in
    # the environment (ESCALATIONS_MAX_CACHED_WORKFLOWS, ESCALATIONS_MAX_WORKFLOW_TASKS, ...).
    settings = Settings.from_env()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BareDeadlineWorkflow],
        activities=[BareActivities(pool).record],
        max_cached_workflows=settings.max_cached_workflows,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_local_activities=settings.max_concurrent_local_activities,
        workflow_runner=UnsandboxedWorkflowRunner(),  # as our worker runs (worker.build_worker)
    )


async def _main() -> None:
    from worker import connect_client

    # Its full garbage collections, timed and served as our worker's are (the spread scenario reads both).
    gc_pauses.watch()
    if address := os.environ.get("ESCALATIONS_METRICS_ADDRESS"):
        metrics.serve_once(address)

    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=10)
    async with pool.acquire() as conn:
        await conn.execute(TABLE_SQL)
    client = await connect_client(os.environ["TEMPORAL_ADDRESS"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with bare_worker(client, pool, os.environ["BARE_TASK_QUEUE"]):
        await stop.wait()
    await pool.close()


if __name__ == "__main__":
    asyncio.run(_main())
    os._exit(0)
