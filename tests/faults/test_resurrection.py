"""Losing Temporal's database loses nothing: the dev server's SQLite file is deleted while cases wait on their
deadlines, the server starts empty, and ``escalations resurrect`` gives every open case its workflow back from
the event store; deadlines that fell due meanwhile are enforced once with their true due_at."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from events.store import EventStore
from tests.faults.invariants import check_invariants, max_breach_delay_seconds, streams
from tests.faults.processes import ROOT, TemporalDevServer, app_env, projector_process, worker_process
from tests.faults.report import FaultRun
from tests.faults.workload import (
    acknowledge_all,
    assert_ack_breaches_at_true_instants,
    open_cases,
    terminate_all,
    wait_for_top_level_breach,
)
from worker import connect_client
from workflows.escalation_workflow import workflow_id_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CASES = 30
DOWN_SECONDS = 10.0


def resurrect(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "resurrect"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


async def statuses(client: Client, case_ids: list[str]) -> list[WorkflowExecutionStatus | None]:
    async def one(case_id: str) -> WorkflowExecutionStatus | None:
        try:
            return (await client.get_workflow_handle(workflow_id_for(case_id)).describe()).status
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    return list(await asyncio.gather(*(one(c) for c in case_ids)))


async def test_after_temporal_loses_its_database_every_open_case_is_resurrected_from_the_store(
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
        async with pool.acquire() as conn:
            while await conn.fetchval("SELECT count(*) FROM events") < CASES:
                await asyncio.sleep(0.05)
        # Temporal loses everything: the server stops, its database file is deleted, it starts empty.
        server.stop()
        for leftover in tmp_path.glob("temporal.db*"):
            leftover.unlink()
        await asyncio.sleep(DOWN_SECONDS)  # the level-1 and level-2 deadlines (4 s, 8 s) fall due meanwhile
        server.start()
        await server.wait_ready()
        client = await connect_client(server.address)
        assert await statuses(client, case_ids) == [None] * CASES, "the new server knows none of the cases"

        found = resurrect(env)
        assert sorted(found["started"]) == sorted(case_ids)
        assert await statuses(client, case_ids) == [WorkflowExecutionStatus.RUNNING] * CASES

        # Running it again starts nothing: every case's workflow runs.
        again = resurrect(env)
        assert again["started"] == [] and again["running"] == CASES
        await wait_for_top_level_breach(EventStore(pool), case_ids)
        await acknowledge_all(client, case_ids)
        checks = await check_invariants(client, pool, case_ids)
        stored = await streams(pool, case_ids)
        for case_id, events in zip(case_ids, stored, strict=True):
            assert_ack_breaches_at_true_instants(case_id, events)
        # Once the cases are quiet (acknowledged; their next deadlines hours away), a resurrect writes nothing.
        async with pool.acquire() as conn:
            events_before = await conn.fetchval("SELECT count(*) FROM events")
        assert resurrect(env)["started"] == []
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM events") == events_before
        assert worker.alive(), f"the worker exited while Temporal was gone; log:\n{worker.log_tail()}"
        fault_run.fault = (
            f"Temporal dev server stopped, its database file deleted, restarted empty after {DOWN_SECONDS:.0f} s; "
            "`escalations resurrect`"
        )
        fault_run.workload = f"{CASES} P1 cases waiting on 4 s acknowledge deadlines; levels 1-2 fall due while lost"
        fault_run.checked = [
            *checks,
            "every open case running again; a second resurrect starts nothing",
            "breaches carry the true due_at (4/8/12/16 s after opening)",
        ]
        fault_run.measured = {"latest breach after its due time": f"{max_breach_delay_seconds(stored):.1f} s"}
    finally:
        await terminate_all(client, case_ids)
        for process in (worker, projector, server):
            process.stop()
