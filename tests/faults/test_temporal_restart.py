"""Temporal goes away while cases wait on deadlines: its dev server (SQLite file) stops and comes back; or it
loses its database altogether and comes back empty, and ``escalations resurrect`` gives every open case its
workflow back from the event store."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from events.store import EventStore
from tests.faults.invariants import breach_lateness, check_invariants, streams
from tests.faults.processes import (
    ROOT,
    ManagedProcess,
    TemporalDevServer,
    app_env,
    projector_process,
    worker_process,
)
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

CASES = 40
DOWN_SECONDS = 12.0  # levels 1 and 2 (4 s, 8 s after opening) fall due meanwhile


@dataclass
class Waiting:
    """A Temporal dev server of the test's own, a worker and a projector, and cases waiting on deadlines."""

    server: TemporalDevServer
    env: dict[str, str]
    worker: ManagedProcess
    client: Client
    case_ids: list[str] = field(default_factory=list)

    async def server_back(self) -> None:
        self.server.start()
        await self.server.wait_ready()
        self.client = await connect_client(self.server.address)


@asynccontextmanager
async def cases_waiting(pool: asyncpg.Pool, url: str, task_queue: str, tmp_path: Path) -> AsyncIterator[Waiting]:
    """``CASES`` P1 cases opened and stored, each waiting on its 4 s acknowledge deadline."""
    server = TemporalDevServer(tmp_path)
    server.start()
    await server.wait_ready()
    env = app_env(url, server.address, task_queue)
    worker, projector = worker_process("worker", env, tmp_path), projector_process("projector", env, tmp_path)
    worker.start()
    projector.start()
    waiting = Waiting(server, env, worker, await connect_client(server.address))
    try:
        waiting.case_ids = await open_cases(waiting.client, task_queue, CASES)
        async with pool.acquire() as conn:
            while await conn.fetchval("SELECT count(*) FROM events") < CASES:
                await asyncio.sleep(0.05)
        yield waiting
    finally:
        await terminate_all(waiting.client, waiting.case_ids)
        for process in (worker, projector, server):
            process.stop()


async def enforced_at_their_true_instants(pool: asyncpg.Pool, waiting: Waiting) -> tuple[list[str], str]:
    """Every case's acknowledge breaches stored at 4/8/12/16 s after opening, then acknowledged; the five
    invariants hold. Returns the checks that held and the breaches' lateness."""
    await wait_for_top_level_breach(EventStore(pool), waiting.case_ids)
    await acknowledge_all(waiting.client, waiting.case_ids)
    checks = await check_invariants(waiting.client, pool, waiting.case_ids)
    stored = await streams(pool, waiting.case_ids)
    for case_id, events in zip(waiting.case_ids, stored, strict=True):
        assert_ack_breaches_at_true_instants(case_id, events)
    assert waiting.worker.alive(), f"the worker exited while Temporal was away; log:\n{waiting.worker.log_tail()}"
    return [*checks, "breaches carry the true due_at (4/8/12/16 s after opening)"], breach_lateness(stored)


async def test_deadlines_that_fell_while_temporal_was_down_are_enforced_once_with_their_true_due_at(
    own_db: tuple[asyncpg.Pool, str], task_queue: str, tmp_path: Path, fault_run: FaultRun
) -> None:
    pool, url = own_db
    async with cases_waiting(pool, url, task_queue, tmp_path) as waiting:
        waiting.server.stop()
        await asyncio.sleep(DOWN_SECONDS)
        await waiting.server_back()
        checks, lateness = await enforced_at_their_true_instants(pool, waiting)
    fault_run.fault = f"Temporal dev server (SQLite file) stopped for {DOWN_SECONDS:.0f} s, then restarted"
    record(fault_run, "down", checks, lateness)


def record(fault_run: FaultRun, away: str, checks: list[str], lateness: str) -> None:
    fault_run.workload = f"{CASES} P1 cases waiting on 4 s acknowledge deadlines; levels 1-2 fall due while {away}"
    fault_run.checked = checks
    fault_run.measured = {"breach stored - due": lateness}


def resurrect(env: dict[str, str]) -> dict:
    """``escalations resurrect``, as an operator runs it; its JSON report."""
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
    async with cases_waiting(pool, url, task_queue, tmp_path) as waiting:
        # Temporal loses everything: the server stops, its database file is deleted, it starts empty.
        waiting.server.stop()
        for leftover in tmp_path.glob("temporal.db*"):
            leftover.unlink()
        await asyncio.sleep(DOWN_SECONDS)
        await waiting.server_back()
        assert await statuses(waiting.client, waiting.case_ids) == [None] * CASES, "the new server knows no case"

        found = resurrect(waiting.env)
        assert sorted(found["started"]) == sorted(waiting.case_ids)
        assert await statuses(waiting.client, waiting.case_ids) == [WorkflowExecutionStatus.RUNNING] * CASES
        again = resurrect(waiting.env)  # every case's workflow runs: it starts nothing
        assert again["started"] == [] and again["running"] == CASES

        checks, lateness = await enforced_at_their_true_instants(pool, waiting)
        # Once the cases are quiet (acknowledged; their next deadlines hours away), a resurrect writes nothing.
        async with pool.acquire() as conn:
            events_before = await conn.fetchval("SELECT count(*) FROM events")
            assert resurrect(waiting.env)["started"] == []
            assert await conn.fetchval("SELECT count(*) FROM events") == events_before
    fault_run.fault = (
        f"Temporal dev server stopped, its database file deleted, restarted empty after {DOWN_SECONDS:.0f} s; "
        "then `escalations resurrect`"
    )
    record(
        fault_run,
        "lost",
        [*checks, "every open case running again; a second resurrect starts nothing, writes nothing"],
        lateness,
    )
