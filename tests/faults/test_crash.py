"""Crash test: SIGKILL the worker process while cases are open and deadlines fall due.

After restarts every deadline is enforced exactly once with its true due_at,
no event is lost or duplicated, versions are gapless and every chain verifies.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore
from samples.cases import command, open_command
from tests.eventually import assert_eventually
from tests.faults.processes import SECONDS_POLICY, worker_process
from tests.faults.workload import ack_breaches, assert_ack_breaches_at_true_instants
from workflows.client import case_handle, case_state, open_case, send_command
from workflows.core.case_view import case_view
from workflows.core.commands import Acknowledge
from workflows.core.events import stream_id_for
from workflows.core.evolve import fold
from workflows.policy_files import load_policy

CASES = 20

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def test_sigkilled_worker_enforces_every_deadline_once_after_restart(
    dev_env: WorkflowEnvironment, database_url: str, store: EventStore, tmp_path: Path
) -> None:
    policy = load_policy(SECONDS_POLICY)
    ack = policy.rules("P1").acknowledge  # 4s per level
    task_queue = f"crash-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "ESCALATIONS_TASK_QUEUE": task_queue,
        "ESCALATIONS_POLICY": str(SECONDS_POLICY),
    }
    worker = worker_process("worker", env, tmp_path)
    worker.start()
    openings = [open_command() for _ in range(CASES)]  # P1: acknowledge within 4s
    try:
        for opening in openings:
            await open_case(dev_env.client, opening, task_queue=task_queue)
        for opening in openings:
            await assert_eventually(
                lambda o=opening: store.read_stream(stream_id_for(o.case_id)), lambda ev: len(ev) >= 1
            )

        # Crash before the first deadline; stay down while levels 1 and 2 fall due.
        await asyncio.sleep(1.5)
        worker.kill()
        await asyncio.sleep(2 * ack.total_seconds())
        worker.start()
        await asyncio.sleep(2.0)
        worker.kill()  # and once more, mid-recovery
        worker.start()

        top_due = 4 * ack  # the breach at the top level (L4)
        for opening in openings:
            await assert_eventually(
                lambda o=opening: store.read_stream(stream_id_for(o.case_id)),
                lambda ev: any(b.due_at - ev[0].occurred_at >= top_due for b in ack_breaches(ev)),
                timeout=60,
            )
        for opening in openings:
            await send_command(dev_env.client, opening.case_id, command(Acknowledge))

        for opening in openings:
            events = await store.read_stream(stream_id_for(opening.case_id))
            # Every breach due before the acknowledgement is recorded (commands record due deadlines first).
            assert_ack_breaches_at_true_instants(opening.case_id, events)
            assert [e.version for e in events] == list(range(1, len(events) + 1))
            assert len({e.event_id for e in events}) == len(events)
            assert await store.verify_stream(stream_id_for(opening.case_id)) is None
            assert await case_state(dev_env.client, opening.case_id) == case_view(fold(events))
    finally:
        worker.stop()
        for opening in openings:
            try:
                await case_handle(dev_env.client, opening.case_id).terminate("test finished")
            except Exception:  # noqa: BLE001 - already finished
                pass
