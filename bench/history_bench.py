"""What a command leaves in Temporal's history, and what replaying it costs: our cases against bare
workflows that took the same number of updates (measured after the round-trip scenario's commands).

A worker that takes a case over from one that died replays the case's whole run inside one workflow task
(5 s timeout), so the bytes a command adds and the time a replay takes bound what a kill costs."""

from __future__ import annotations

import time
from collections.abc import Sequence

from temporalio.client import WorkflowHandle
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from bench.baseline_workflows import BareUpdateWorkflow
from bench.report import Row
from workflows.data_converter import data_converter
from workflows.escalation_workflow import EscalationWorkflow

# As the workers run them (see "Tuning" in the README): the sandbox would make replays look slower.
UNSANDBOXED = UnsandboxedWorkflowRunner()


async def _measure(handles: Sequence[WorkflowHandle], replayer: Replayer) -> tuple[float, float]:
    """Mean history bytes and mean replay seconds over ``handles``' current runs."""
    total_bytes, total_seconds = 0, 0.0
    for handle in handles:
        history = await handle.fetch_history()
        total_bytes += sum(event.ByteSize() for event in history.events)
        started = time.perf_counter()
        await replayer.replay_workflow(history)
        total_seconds += time.perf_counter() - started
    return total_bytes / len(handles), total_seconds / len(handles)


async def history_and_replay(
    ours: Sequence[WorkflowHandle], bare: Sequence[WorkflowHandle], commands: int
) -> list[Row]:
    """Rows for workflows that have each taken ``commands`` updates (ours: one stored event each)."""
    ours_bytes, ours_replay = await _measure(
        ours, Replayer(workflows=[EscalationWorkflow], data_converter=data_converter, workflow_runner=UNSANDBOXED)
    )
    bare_bytes, bare_replay = await _measure(
        bare, Replayer(workflows=[BareUpdateWorkflow], workflow_runner=UNSANDBOXED)
    )
    baseline = "bare workflow, same number of no-op updates"
    return [
        Row(f"history bytes per command ({commands} commands a case)", "KiB", ours_bytes / commands / 1024,
            bare_bytes / commands / 1024, baseline),
        Row(f"replay of one case's run ({commands} commands)", "ms", ours_replay * 1000, bare_replay * 1000, baseline),
    ]  # fmt: skip
