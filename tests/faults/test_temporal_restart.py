"""Temporal server restart: the dev server (SQLite file) stops while cases wait on deadlines, then comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from events.store import EventStore
from tests.faults.invariants import check_invariants, max_breach_delay_seconds, streams
from tests.faults.processes import TemporalDevServer, app_env, projector_process, worker_process
from tests.faults.report import FaultRun
from tests.faults.workload import (
    acknowledge_all,
    assert_ack_breaches_at_true_instants,
    open_cases,
    terminate_all,
    wait_for_top_level_breach,
)
from worker import connect_client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CASES = 40
DOWN_SECONDS = 12.0


async def test_deadlines_that_fell_while_temporal_was_down_are_enforced_once_with_their_true_due_at(
    own_db: tuple[asyncpg.Pool, str], task_queue: str, tmp_path: Path, fault_run: FaultRun
) -> None:
    pool, url = own_db
    server = TemporalDevServer(tmp_path)
    server.start()
    await server.wait_ready()
    env = app_env(url, server.address, task_queue)
    worker, projector = worker_process("worker", env, tmp_path), projector_process("projector", env, tmp_path)
    worker.start()
    projector.start()
    case_ids: list[str] = []
    client = await connect_client(server.address)
    try:
        case_ids = await open_cases(client, task_queue, CASES)
        # Every case stored and waiting on its 4 s acknowledge deadline, then the server goes away.
        async with pool.acquire() as conn:
            while await conn.fetchval("SELECT count(*) FROM events") < CASES:
                await asyncio.sleep(0.05)
        server.stop()
        await asyncio.sleep(DOWN_SECONDS)  # levels 1 and 2 (4 s, 8 s) fall due meanwhile
        server.start()
        await server.wait_ready()
        client = await connect_client(server.address)

        await wait_for_top_level_breach(EventStore(pool), case_ids)
        await acknowledge_all(client, case_ids)
        checks = await check_invariants(client, pool, case_ids)
        stored = await streams(pool, case_ids)
        for case_id, events in zip(case_ids, stored, strict=True):
            assert_ack_breaches_at_true_instants(case_id, events)
        assert worker.alive(), f"the worker exited while Temporal was down; log:\n{worker.log_tail()}"
        fault_run.fault = f"Temporal dev server (SQLite file) stopped for {DOWN_SECONDS:.0f} s, then restarted"
        fault_run.workload = f"{CASES} P1 cases waiting on 4 s acknowledge deadlines; levels 1-2 fall due while down"
        fault_run.checked = [*checks, "breaches carry the true due_at (4/8/12/16 s after opening)"]
        fault_run.measured = {"latest breach after its due time": f"{max_breach_delay_seconds(stored):.1f} s"}
    finally:
        await terminate_all(client, case_ids)
        for process in (worker, projector, server):
            process.stop()
