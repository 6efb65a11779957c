"""Bare workflows that do the least Temporal allows: the baselines our figures are compared with."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow

RECORD = "bare_record"


@workflow.defn(name="BareUpdateWorkflow")
class BareUpdateWorkflow:
    """Accepts a no-op update until told to stop: the floor for a command round trip."""

    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)

    @workflow.update(name="noop")
    async def noop(self, value: str) -> str:
        return value

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self._done = True


class BareSpec(BaseModel):
    """When to wake: at ``due_at``, ``lead_seconds`` after the start, or at each of ``wake_seconds`` after it
    (the same instants as a case's warning and breach), with one activity per wake-up."""

    due_at: datetime | None = None
    lead_seconds: float | None = None
    wake_seconds: list[float] | None = None


class BareRecord(BaseModel):
    workflow_id: str
    due_at: datetime
    detected_at: datetime
    seq: int = 0  # which wake-up of the workflow


@workflow.defn(name="BareDeadlineWorkflow")
class BareDeadlineWorkflow:
    def __init__(self) -> None:
        self._finish = False

    @workflow.run
    async def run(self, spec: BareSpec) -> None:
        start = workflow.now()
        if spec.wake_seconds is not None:
            instants = [start + timedelta(seconds=s) for s in spec.wake_seconds]
        else:
            instants = [spec.due_at or start + timedelta(seconds=spec.lead_seconds or 0)]
        for seq, due in enumerate(instants):
            delay = (due - workflow.now()).total_seconds()
            if delay > 0:
                await workflow.sleep(delay)
            record = BareRecord(
                workflow_id=workflow.info().workflow_id, due_at=due, detected_at=workflow.now(), seq=seq
            )
            await workflow.execute_local_activity(RECORD, record, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: self._finish)

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self._finish = True
