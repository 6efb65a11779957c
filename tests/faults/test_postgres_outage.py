"""PostgreSQL outage: the database is cut off (behind a TCP proxy the test controls) for over 30 s during appends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore
from samples.cases import SERVICE, command
from tests.eventually import assert_eventually
from tests.faults.invariants import breach_lateness, check_invariants, streams
from tests.faults.processes import (
    api_process,
    app_env,
    projector_process,
    wait_until_serving,
    worker_process,
)
from tests.faults.proxy import TcpProxy
from tests.faults.report import FaultRun
from tests.faults.workload import (
    acknowledge_all,
    assert_ack_breaches_at_true_instants,
    open_cases,
    terminate_all,
    wait_for_top_level_breach,
)
from tests.net import free_port
from workflows.client import case_handle
from workflows.core.commands import AddNote
from workflows.core.events import NoteAdded
from workflows.core.vocabulary import NoteVisibility

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CASES = 40
OUTAGE_SECONDS = 32.0
NOTES_PER_CASE = 3


async def readiness(http: httpx.AsyncClient, url: str) -> tuple[int, dict]:
    response = await http.get(url)
    return response.status_code, response.json()


async def test_appends_wait_out_a_database_outage_and_nothing_is_lost_or_reordered(
    dev_env: WorkflowEnvironment,
    own_db: tuple[asyncpg.Pool, str],
    task_queue: str,
    tmp_path: Path,
    fault_run: FaultRun,
) -> None:
    pool, url = own_db
    proxy = TcpProxy.for_database(url)
    await proxy.start()
    client = dev_env.client
    env = app_env(proxy.url_through(url), client.service_client.config.target_host, task_queue)
    port = free_port()
    worker = worker_process("worker", env, tmp_path)
    projector = projector_process("projector", env, tmp_path)
    api = api_process("api", env, tmp_path, port)
    processes = [worker, projector, api]
    for process in processes:
        process.start()
    readyz = f"http://127.0.0.1:{port}/readyz"
    case_ids: list[str] = []
    try:
        await wait_until_serving(readyz, api)
        async with httpx.AsyncClient(timeout=10) as http:
            await assert_eventually(lambda: readiness(http, readyz), lambda r: r[0] == 200)
            case_ids = await open_cases(client, task_queue, CASES)
            async with pool.acquire() as conn:
                while await conn.fetchval("SELECT count(*) FROM events") < CASES:
                    await asyncio.sleep(0.05)

            await proxy.cut()
            cut_at = time.monotonic()
            # Facts keep arriving while the database is away; they must be stored, in order.
            noted = case_ids[:10]
            for n in range(NOTES_PER_CASE):
                for case_id in noted:
                    note = command(AddNote, actor=SERVICE, visibility=NoteVisibility.INTERNAL, text=f"note {n}")
                    await case_handle(client, case_id).signal("add_note", note)
            status, body = await assert_eventually(lambda: readiness(http, readyz), lambda r: r[0] == 503)
            assert body["checks"]["postgresql"].startswith("unreachable"), body
            await asyncio.sleep(OUTAGE_SECONDS - (time.monotonic() - cut_at))
            assert (await readiness(http, readyz))[0] == 503, "ready while the database was still cut off"
            await proxy.restore()
            outage = time.monotonic() - cut_at
            await assert_eventually(lambda: readiness(http, readyz), lambda r: r[0] == 200, timeout=30)

        await wait_for_top_level_breach(EventStore(pool), case_ids)
        await acknowledge_all(client, case_ids)
        checks = await check_invariants(client, pool, case_ids)
        stored = await streams(pool, case_ids)
        for case_id, events in zip(case_ids, stored, strict=True):
            assert_ack_breaches_at_true_instants(case_id, events)
            notes = [e.data.text for e in events if isinstance(e.data, NoteAdded)]
            assert notes == ([f"note {n}" for n in range(NOTES_PER_CASE)] if case_id in noted else []), case_id
        for case_id in case_ids:
            status_now = (await case_handle(client, case_id).describe()).status
            assert status_now == WorkflowExecutionStatus.RUNNING, f"{case_id}: workflow {status_now}"
        for process in processes:
            assert process.alive(), f"{process.name} exited during the outage; log:\n{process.log_tail()}"
        fault_run.fault = (
            f"PostgreSQL cut off behind a TCP proxy for {outage:.0f} s (connections dropped, new ones refused)"
        )
        fault_run.workload = (
            f"{CASES} P1 cases; all 4 acknowledge levels and repeats fall due in the outage; "
            f"{NOTES_PER_CASE} notes each to {len(noted)} cases sent during it"
        )
        fault_run.checked = [
            *checks,
            "no workflow failed; worker, projector and API stayed up",
            "notes stored in the order sent",
            "/readyz 503 during the outage, 200 after",
        ]
        fault_run.measured = {"breach stored - due": breach_lateness(stored)}
    finally:
        await terminate_all(client, case_ids)
        for process in processes:
            process.stop()
        await proxy.close()
