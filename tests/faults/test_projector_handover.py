"""Two projector instances at once: one applies each projection; killing it hands over within seconds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore
from projections import PROJECTIONS
from tests.eventually import assert_eventually
from tests.faults.invariants import check_invariants, projector_caught_up
from tests.faults.processes import app_env, projector_process, with_query, worker_process
from tests.faults.report import FaultRun
from tests.faults.workload import acknowledge_all, open_cases, terminate_all, wait_for_top_level_breach

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CASES = 60
HANDOVER_LIMIT_SECONDS = 5.0


async def lease_holders(pool: asyncpg.Pool) -> list[str]:
    """The application_name of the session holding each projection's lease (one entry per lease held)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.database = (
                   SELECT oid FROM pg_database WHERE datname = current_database())""",
            0x45534350,
        )
    return sorted(r["application_name"] for r in rows)


async def test_one_projector_applies_each_projection_and_a_standby_takes_over_when_it_dies(
    dev_env: WorkflowEnvironment,
    own_db: tuple[asyncpg.Pool, str],
    task_queue: str,
    tmp_path: Path,
    fault_run: FaultRun,
) -> None:
    pool, url = own_db
    client = dev_env.client
    env = app_env(url, client.service_client.config.target_host, task_queue)
    worker = worker_process("worker", env, tmp_path)
    # Named sessions, so pg_locks tells which instance holds a lease; INFO, so the test sees each start.
    first, second = (
        projector_process(
            name,
            {**env, "DATABASE_URL": with_query(url, application_name=name), "ESCALATIONS_LOG_LEVEL": "INFO"},
            tmp_path,
        )
        for name in ("projector-a", "projector-b")
    )
    worker.start()
    first.start()
    case_ids: list[str] = []
    try:
        # The first one up takes every lease; the second, started after, stands by.
        everything = [first.name] * len(PROJECTIONS)
        await assert_eventually(lambda: lease_holders(pool), lambda h: h == everything)
        second.start()
        await second.wait_for_log("projector started", 1)
        active, standby, active_name = first, second, first.name

        opening = asyncio.create_task(open_cases(client, task_queue, CASES, every=0.1))
        samples = []
        for _ in range(20):  # while cases open and events flow, never two holders of one lease
            samples.append(await lease_holders(pool))
            await asyncio.sleep(0.1)
        assert all(s == [active_name] * len(PROJECTIONS) for s in samples), samples

        active.kill()
        killed_at = time.monotonic()
        await assert_eventually(
            lambda: lease_holders(pool), lambda h: h == [standby.name] * len(PROJECTIONS), timeout=30, interval=0.05
        )
        handover = time.monotonic() - killed_at
        assert handover < HANDOVER_LIMIT_SECONDS, f"hand-over took {handover:.1f}s"
        active.start()  # back as the standby now

        case_ids = await opening
        await wait_for_top_level_breach(EventStore(pool), case_ids)
        await acknowledge_all(client, case_ids)
        await projector_caught_up(pool)
        checks = await check_invariants(client, pool, case_ids)
        assert await lease_holders(pool) == [standby.name] * len(PROJECTIONS), "the lease moved back without a fault"
        async with pool.acquire() as conn:
            events, rows = (
                await conn.fetchval("SELECT count(*) FROM events"),
                await conn.fetchval("SELECT count(*) FROM audit_trail"),
            )
        assert rows == events, f"audit trail has {rows} rows for {events} events (double or missed apply)"
        fault_run.fault = "two projector instances at once; the active one SIGKILLed mid-stream"
        fault_run.workload = f"{CASES} P1 cases opened and falling due while both run; then acknowledged"
        fault_run.checked = [
            *checks,
            "each projection's lease held by exactly one instance throughout",
            "audit trail has one row per event",
        ]
        fault_run.measured = {"hand-over after the kill": f"{handover:.2f} s"}
    finally:
        await terminate_all(client, case_ids)
        for process in (worker, first, second):
            process.stop()
