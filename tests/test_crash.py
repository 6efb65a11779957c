"""Crash test: SIGKILL the worker process while cases are open and deadlines fall due.

After restarts every deadline is enforced exactly once with its true due_at,
no event is lost or duplicated, versions are gapless and every chain verifies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from events.models import DeadlineBreached, RecordedEvent, stream_id_for
from events.store import EventStore
from events.vocabulary import DeadlineKind
from tests.domain_case import command, open_command
from tests.eventually import assert_eventually
from workflows.client import case_handle, case_state, open_case, send_command
from workflows.commands import Acknowledge
from workflows.evolve import fold
from workflows.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent
SECONDS_POLICY = ROOT / "tests" / "policies" / "seconds.toml"
CASES = 20

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


class WorkerProcess:
    """``python worker.py`` as a separate OS process, so SIGKILL is a real crash."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = env
        self._log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self._log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")], env=self._env, stdout=log, stderr=log
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def ack_breaches(events: list[RecordedEvent]) -> list[DeadlineBreached]:
    return [e.data for e in events if isinstance(e.data, DeadlineBreached) and e.data.kind == DeadlineKind.ACKNOWLEDGE]


async def test_sigkilled_worker_enforces_every_deadline_once_after_restart(
    dev_env: WorkflowEnvironment, database_url: str, store: EventStore, tmp_path: Path
) -> None:
    policy = load_policy(SECONDS_POLICY)
    ack = policy.rules("P1").acknowledge  # 4s per level
    repeat = policy.escalation.repeat_at_top  # 3s at the top
    task_queue = f"crash-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "ESCALATIONS_TASK_QUEUE": task_queue,
        "ESCALATIONS_POLICY": str(SECONDS_POLICY),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
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
            opened_at = events[0].occurred_at
            acked_at = next(e.occurred_at for e in events if e.type == "escalation.acknowledged")
            dues = [b.due_at - opened_at for b in ack_breaches(events)]
            expected = [ack, 2 * ack, 3 * ack, 4 * ack]
            while opened_at + expected[-1] + repeat <= acked_at:
                expected.append(expected[-1] + repeat)
            # A due instant within the same workflow task as the acknowledgement may go either way.
            if dues == expected[:-1] and opened_at + expected[-1] >= acked_at - timedelta(seconds=1):
                expected = expected[:-1]
            assert dues == expected, f"{opening.case_id}: breaches due at {dues}, expected {expected}"
            assert [b.level for b in ack_breaches(events)][:4] == [1, 2, 3, 4]
            assert [e.version for e in events] == list(range(1, len(events) + 1))
            assert len({e.event_id for e in events}) == len(events)
            assert await store.verify_stream(stream_id_for(opening.case_id)) is None
            assert await case_state(dev_env.client, opening.case_id) == fold(events)
    finally:
        worker.stop()
        for opening in openings:
            try:
                await case_handle(dev_env.client, opening.case_id).terminate("test finished")
            except Exception:  # noqa: BLE001 - already finished
                pass
