"""A rolling deploy: two worker processes, each stopped by SIGTERM in turn and started again while cases open
and fall due. A stopping worker finishes its tasks in flight and tells the server its sticky queue is gone, so
its cases move to the other worker at once. (Crashes, SIGKILL, are the soak's: ``test_soak.py``.)"""

from __future__ import annotations

import asyncio
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


pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
RESTARTS = 6
CASES = 60


async def test_a_rolling_deploy_of_two_workers_costs_no_deadline_its_time(
    dev_env: WorkflowEnvironment,
    own_db: tuple[asyncpg.Pool, str],
    task_queue: str,
    tmp_path: Path,
    fault_run: FaultRun,
) -> None:
    pool, url = own_db
    client = dev_env.client
    env = app_env(url, client.service_client.config.target_host, task_queue)
    # Both log at INFO so the test can tell when each is up ("worker started").
    workers = [worker_process(name, {**env, "ESCALATIONS_LOG_LEVEL": "INFO"}, tmp_path) for name in ("a", "b")]
    projector = projector_process("projector", env, tmp_path)
    processes = [*workers, projector]
    for process in processes:
        process.start()
    rng = random.Random(6)
    case_ids: list[str] = []
    try:
        opening = asyncio.create_task(open_cases(client, task_queue, CASES, every=0.2))
        stopped = 0
        while stopped < RESTARTS:
            # The two workers in turn, so both hold cases in their caches when they stop; the other one is
            # always up. Stopped (SIGTERM) at a random moment after it is polling, with work in flight.
            victim, other = workers[stopped % 2], workers[(stopped + 1) % 2]
            await other.wait_for_log("worker started", len(other.pids))
            await victim.wait_for_log("worker started", len(victim.pids))
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            status = victim.stop()
            assert status == 0, (
                f"worker {victim.name} did not exit 0 on SIGTERM (its shutdown failed or it had to be killed) (status {status}):\n{victim.log_tail()}"
            )
            stopped += 1
            victim.start()
        case_ids = await opening
        await wait_for_top_level_breach(EventStore(pool), case_ids)
        await acknowledge_all(client, case_ids)

        checks = await check_invariants(client, pool, case_ids)
        for case_id, events in zip(case_ids, await streams(pool, case_ids), strict=True):
            assert_ack_breaches_at_true_instants(case_id, events)
        assert all(worker.alive() for worker in workers), "a worker exited on its own"
        fault_run.fault = f"rolling deploy: a worker SIGTERMed {stopped} times (the two in turn, the other one up), restarted each time"
        fault_run.workload = f"{CASES} P1 cases opened meanwhile; 4 acknowledge breaches each, then acknowledged"
        fault_run.checked = [*checks, "breaches at 4/8/12/16 s after opening, then every 3 s"]
        ended = [pid for worker in workers for pid in worker.pids[:-1]]  # every incarnation but the last
        by_ended, total = await workflow_tasks_by(client, case_ids, ended)
        assert by_ended > 0, "no stopped incarnation ever completed a workflow task: the test faulted nothing"
        fault_run.measured = {
            "workflow tasks completed by incarnations later stopped": f"{by_ended} of {total}",
            "breach stored - due": breach_lateness(await streams(pool, case_ids)),
        }
    finally:
        await terminate_all(client, case_ids)
        for process in processes:
            process.stop()
