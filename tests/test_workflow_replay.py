"""Recorded histories of canonical cases replay against today's workflow code (Temporal's Replayer).

A change to workflow code that would make a running case's history diverge
fails here. Refresh the files only for intended changes, guarded with
``workflow.patched`` (README, "Changing workflow code safely").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from activities import policy_library
from tests.record_histories import HERE, POLICIES, SCENARIOS
from workflows.core.policy import Policy
from workflows.data_converter import data_converter
from workflows.escalation_workflow import EscalationWorkflow

HISTORIES = sorted(HERE.glob("*.json"))


@pytest.fixture(autouse=True)
def pinned_policies() -> None:
    """What the pinned_policies table gives a worker: the policies compact histories name by hash."""
    for path in sorted(POLICIES.glob("*.json")):
        policy = Policy.model_validate(json.loads(path.read_text()))
        assert policy_library.remember(policy) == path.stem, f"{path.name} does not hold the policy it names"


def test_every_scenario_has_a_recorded_history() -> None:
    recorded = {path.name.split(".")[0] for path in HISTORIES}
    assert recorded == set(SCENARIOS), "run: .venv/bin/python -m tests.record_histories"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_recorded_history_replays_on_the_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[EscalationWorkflow], data_converter=data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
