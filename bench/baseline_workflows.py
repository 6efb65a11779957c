"""Bare workflows that do the least Temporal allows: the baselines our figures are compared with."""

from __future__ import annotations

from temporalio import workflow


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
