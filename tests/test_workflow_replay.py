"""Recorded histories of canonical cases replay against today's workflow code (Temporal's Replayer).

A change to workflow code that would make a running case's history diverge
fails here. Refresh the files only for intended changes, guarded with
``workflow.patched`` (README, "Changing workflow code safely").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.record_histories import SCENARIOS
from workflows.data_converter import data_converter
from workflows.escalation_workflow import EscalationWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


def test_every_scenario_has_a_recorded_history() -> None:
    recorded = {path.name.split(".")[0] for path in HISTORIES}
    assert recorded == set(SCENARIOS), "run: .venv/bin/python -m tests.record_histories"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_recorded_history_replays_on_the_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[EscalationWorkflow], data_converter=data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
