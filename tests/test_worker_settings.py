"""The worker's settings that bound a deadline's lateness when a worker dies, and their refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from events.memory import InMemoryEventStore
from samples.cases import command, open_command
from tests.temporal_fixtures import running_worker
from worker import Settings
from workflows.client import case_handle, send_command
from workflows.core.commands import AddNote
from workflows.core.policy import Policy
from workflows.escalation_workflow import WORKFLOW_TASK_TIMEOUT, EscalationWorkflow, workflow_id_for
from workflows.messages import WorkflowInput


def test_the_sticky_timeout_defaults_to_two_seconds_and_reads_a_duration() -> None:
    assert Settings.from_env({}).sticky_timeout == timedelta(seconds=2)
    assert Settings.from_env({"ESCALATIONS_STICKY_TIMEOUT": "5s"}).sticky_timeout == timedelta(seconds=5)


@pytest.mark.parametrize("value", ["0s", "500ms", "2m", "soon"])
def test_a_sticky_timeout_outside_one_to_sixty_seconds_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="ESCALATIONS_STICKY_TIMEOUT"):
        Settings.from_env({"ESCALATIONS_STICKY_TIMEOUT": value})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ESCALATIONS_WORKFLOW_TASK_POLLERS", "1"),
        ("ESCALATIONS_WORKFLOW_TASK_POLLERS", "many"),
        ("ESCALATIONS_NONSTICKY_RATIO", "0"),
        ("ESCALATIONS_NONSTICKY_RATIO", "1.5"),
        ("ESCALATIONS_NONSTICKY_RATIO", "half"),
        ("ESCALATIONS_MAX_CACHED_WORKFLOWS", "lots"),
        ("ESCALATIONS_MAX_WORKFLOW_TASKS", "0"),
        ("ESCALATIONS_MAX_WORKFLOW_TASKS", "1"),
        ("ESCALATIONS_MAX_LOCAL_ACTIVITIES", "-5"),
        ("ESCALATIONS_DB_POOL_SIZE", "twenty"),
        ("ESCALATIONS_WORKFLOW_SANDBOX", "maybe"),
    ],
)
def test_worker_settings_outside_their_range_are_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        Settings.from_env({variable: value})


def test_workflow_tasks_in_flight_default_to_32_and_read_the_environment() -> None:
    # 200 in flight outlived the 4 s task timeout while cases opened faster than the worker finished them.
    assert Settings.from_env({}).max_concurrent_workflow_tasks == 32
    assert Settings.from_env({"ESCALATIONS_MAX_WORKFLOW_TASKS": "64"}).max_concurrent_workflow_tasks == 64


def test_poller_settings_default_to_the_sdks_and_read_the_environment() -> None:
    assert (Settings.from_env({}).workflow_task_pollers, Settings.from_env({}).nonsticky_ratio) == (5, 0.2)
    tuned = Settings.from_env({"ESCALATIONS_WORKFLOW_TASK_POLLERS": "10", "ESCALATIONS_NONSTICKY_RATIO": "0.5"})
    assert (tuned.workflow_task_pollers, tuned.nonsticky_ratio) == (10, 0.5)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_worker_without_a_workflow_cache_is_refused(value: str) -> None:
    # With no cache the SDK evicts a case mid-task while its append (a local activity) runs: every task
    # times out and is retried, and each of the case's deadlines is stored tens of seconds late.
    with pytest.raises(ValueError, match="ESCALATIONS_MAX_CACHED_WORKFLOWS must be a whole number of at least 1"):
        Settings.from_env({"ESCALATIONS_MAX_CACHED_WORKFLOWS": value})


async def test_a_case_is_started_with_the_short_workflow_task_timeout(
    time_skipping_env: WorkflowEnvironment, policy: Policy
) -> None:
    async with running_worker(time_skipping_env.client, None, policy, store=InMemoryEventStore()) as cases:
        handle = await cases.open(open_command())
        config = (await handle.describe()).raw_description.execution_config
        assert config.default_workflow_task_timeout.ToTimedelta() == WORKFLOW_TASK_TIMEOUT == timedelta(seconds=4)


async def test_a_case_opened_under_a_longer_task_timeout_takes_the_short_one_at_its_next_run(
    time_skipping_env: WorkflowEnvironment, policy: Policy
) -> None:
    """Cases opened before the timeout was shortened (10 s, Temporal's default) get it at continue-as-new:
    the SDK would otherwise carry the old value over to every later run."""
    client = time_skipping_env.client
    async with running_worker(client, None, policy, store=InMemoryEventStore()) as cases:
        opening = open_command()
        handle = await client.start_workflow(
            EscalationWorkflow.run,
            WorkflowInput(open=opening, max_events_per_run=3),
            id=workflow_id_for(opening.case_id),
            task_queue=cases.task_queue,
            task_timeout=timedelta(seconds=10),
        )
        cases.track(opening.case_id)
        first = await handle.describe()
        assert first.raw_description.execution_config.default_workflow_task_timeout.ToTimedelta() == timedelta(
            seconds=10
        )
        for i in range(3):  # past the run's 3 events
            await send_command(client, opening.case_id, command(AddNote, text=f"note {i}"))
        later = await case_handle(client, opening.case_id).describe()
        assert later.run_id != first.run_id
        assert (
            later.raw_description.execution_config.default_workflow_task_timeout.ToTimedelta() == WORKFLOW_TASK_TIMEOUT
        )
