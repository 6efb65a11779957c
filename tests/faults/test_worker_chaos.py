"""Worker chaos: two worker processes; one is SIGKILLed and restarted over and over while cases open and fall due."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore
from tests.faults.invariants import breach_lateness, check_invariants, streams
from tests.faults.processes import app_env, projector_process, worker_process
from tests.faults.report import FaultRun
from tests.faults.workload import (
    acknowledge_all,
    assert_ack_breaches_at_true_instants,
    open_cases,
    terminate_all,
    wait_for_top_level_breach,
)
from workflows.client import case_handle


async def workflow_tasks_by(client: Client, case_ids: list[str], pids: list[int]) -> tuple[int, int]:
    """(workflow tasks completed by a worker with one of ``pids``, all completed tasks) over the cases' histories."""
    identities = {f"{pid}@{socket.gethostname()}" for pid in pids}
    histories = await asyncio.gather(*(case_handle(client, c).fetch_history() for c in case_ids))
    completed = [
        e.workflow_task_completed_event_attributes.identity
        for history in histories
        for e in history.events
        if e.HasField("workflow_task_completed_event_attributes")
    ]
    return sum(identity in identities for identity in completed), len(completed)


# CI sizes; `python -m bench.soak` runs the same test longer (FAULT_SOAK_CASES, FAULT_SOAK_KILLS).
CASES = int(os.environ.get("FAULT_SOAK_CASES", "200"))
KILLS = int(os.environ.get("FAULT_SOAK_KILLS", "20"))
pytestmark = [pytest.mark.slow, pytest.mark.timeout(max(300, 10 * KILLS + CASES))]


async def test_a_worker_killed_twenty_times_loses_duplicates_and_misses_nothing(
    dev_env: WorkflowEnvironment,
    own_db: tuple[asyncpg.Pool, str],
    task_queue: str,
    tmp_path: Path,
    fault_run: FaultRun,
) -> None:
    pool, url = own_db
    client = dev_env.client
    env = app_env(url, client.service_client.config.target_host, task_queue)
    # The victim logs at INFO so the test can tell when it is up ("worker started").
    victim = worker_process("worker-a", {**env, "ESCALATIONS_LOG_LEVEL": "INFO"}, tmp_path)
    # The survivor keeps no sticky cache, so it does not hoard the cases: every
    # workflow task it runs goes back to the shared queue, where the victim competes.
    survivor = worker_process("worker-b", {**env, "ESCALATIONS_MAX_CACHED_WORKFLOWS": "0"}, tmp_path)
    projector = projector_process("projector", env, tmp_path)
    processes = [victim, survivor, projector]
    for process in processes:
        process.start()
    rng = random.Random(6)
    case_ids: list[str] = []
    try:
        opening = asyncio.create_task(open_cases(client, task_queue, CASES, every=0.2))
        kills = 0
        while kills < KILLS:
            # Killed at a random moment after it is polling, with work in flight.
            await victim.wait_for_log("worker started", len(victim.pids))
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            victim.kill()
            kills += 1
            victim.start()
        case_ids = await opening
        await wait_for_top_level_breach(EventStore(pool), case_ids)
        await acknowledge_all(client, case_ids)

        checks = await check_invariants(client, pool, case_ids)
        for case_id, events in zip(case_ids, await streams(pool, case_ids), strict=True):
            assert_ack_breaches_at_true_instants(case_id, events)
        assert survivor.alive() and victim.alive(), "a worker exited on its own"
        fault_run.fault = f"worker SIGKILLed {kills} times (one of two workers), restarted each time"
        fault_run.workload = f"{CASES} P1 cases opened during the kills; 4 acknowledge breaches each, then acknowledged"
        fault_run.checked = [*checks, "breaches at 4/8/12/16 s after opening, then every 3 s"]
        by_victim, total = await workflow_tasks_by(client, case_ids, victim.pids)
        assert by_victim > 0, "the killed worker never completed a workflow task: the test faulted nothing"
        fault_run.measured = {
            "workflow tasks completed by the killed worker's incarnations": f"{by_victim} of {total}",
            "breach stored - due": breach_lateness(await streams(pool, case_ids)),
        }
    finally:
        await terminate_all(client, case_ids)
        for process in processes:
            process.stop()
