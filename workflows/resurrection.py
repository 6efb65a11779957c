"""Resurrection: a workflow for every open case the event store holds and Temporal does not run.

The event store is the record. If Temporal loses its own database (a wiped dev server file, a botched
cluster migration, a region rebuilt from older backups), its open cases have no workflow and nothing would
fire their deadlines again. ``resurrect`` folds each such case from its events and starts its workflow
with that state (as continue-as-new does) under the same workflow id: every deadline that fell due
meanwhile fires at once with its true ``due_at`` (the state knows it); nothing is written at start, so
running it twice changes nothing; a case whose workflow runs is left alone.

Used by ``escalations resurrect`` and by the dev stack at start. Never imported by workflow code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from events.port import EventStorePort
from workflows.core.events import CASE_STREAM_PREFIX, case_id_of
from workflows.core.evolve import fold
from workflows.core.state import lifecycle_over
from workflows.escalation_workflow import TASK_QUEUE, WORKFLOW_TASK_TIMEOUT, EscalationWorkflow, workflow_id_for
from workflows.messages import WorkflowInput

log = structlog.get_logger("escalations.resurrection")


@dataclass
class Resurrection:
    """What one pass found: cases whose workflow runs, cases that need none, and the cases it started."""

    running: int = 0
    over: int = 0
    started: list[str] = field(default_factory=list)
    # Cases it could not judge or start (a corrupt stream, Temporal refusing): case id -> why. The rest go on.
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def examined(self) -> int:
        return self.running + self.over + len(self.started) + len(self.failed)


async def resurrect(
    client: Client, store: EventStorePort, *, task_queue: str = TASK_QUEUE, in_flight: int = 16
) -> Resurrection:
    """Start the workflow of every case in ``store`` that is open and has none running on ``client``'s
    namespace (task queue ``task_queue``); see the module's docstring."""
    found = Resurrection()
    gate = asyncio.Semaphore(in_flight)

    async def one(stream_id: str) -> None:
        async with gate:
            case_id = case_id_of(stream_id)
            try:
                await resurrect_one(stream_id, case_id)
            except Exception as exc:  # noqa: BLE001 - one case's trouble is reported; the others are resurrected
                found.failed[case_id] = f"{type(exc).__name__}: {exc}"
                log.error("case not resurrected", case_id=case_id, error=found.failed[case_id])

    async def resurrect_one(stream_id: str, case_id: str) -> None:
        if await _running(client, workflow_id_for(case_id)):
            found.running += 1
            return
        state = fold(await store.read_stream(stream_id))
        if state is None or lifecycle_over(state, datetime.now(UTC)):
            found.over += 1
            return
        try:
            await client.start_workflow(
                EscalationWorkflow.run,
                WorkflowInput(carried=state),
                id=workflow_id_for(case_id),
                task_queue=task_queue,
                task_timeout=WORKFLOW_TASK_TIMEOUT,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            found.running += 1  # started meanwhile (another pass, or a command's update-with-start)
            return
        found.started.append(case_id)
        log.info("case resurrected", case_id=case_id, version=state.version, status=state.status.value)

    streams = [s for s in await store.stream_ids() if s.startswith(CASE_STREAM_PREFIX)]
    await asyncio.gather(*(one(s) for s in streams))
    return found


async def _running(client: Client, workflow_id: str) -> bool:
    try:
        described = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING
