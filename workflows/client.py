"""Client-side contract of ``EscalationWorkflow``: how other code opens and drives a case.

Used by the CLI, the tests (and later the HTTP API). Never imported by workflow code.
"""

from __future__ import annotations

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError

from workflows.commands import Command, OpenEscalation
from workflows.escalation_workflow import TASK_QUEUE, EscalationWorkflow, workflow_id_for
from workflows.messages import CommandResult, WorkflowInput
from workflows.state import EscalationState


class CommandRefused(Exception):
    """The case refused a command; ``rule`` names the rule (e.g. ``acknowledge.not_open``)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


async def open_case(
    client: Client, command: OpenEscalation, *, task_queue: str = TASK_QUEUE, max_events_per_run: int | None = None
) -> WorkflowHandle:
    """Start the case's workflow; a second open of the same case id returns the running one."""
    workflow_input = WorkflowInput(open=command)
    if max_events_per_run is not None:
        workflow_input = WorkflowInput(open=command, max_events_per_run=max_events_per_run)
    return await client.start_workflow(
        EscalationWorkflow.run,
        workflow_input,
        id=workflow_id_for(command.case_id),
        task_queue=task_queue,
        # A case id is used once, forever: a closed case is reopened, never re-created.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def open_case_and_wait(
    client: Client, command: OpenEscalation, *, task_queue: str = TASK_QUEUE
) -> EscalationState:
    """Start the case (or find it running) and return its state once the opening event is stored.

    One round trip (update-with-start) instead of a start followed by polling queries.
    """
    start = WithStartWorkflowOperation(
        EscalationWorkflow.run,
        WorkflowInput(open=command),
        id=workflow_id_for(command.case_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return await client.execute_update_with_start_workflow(EscalationWorkflow.opened, start_workflow_operation=start)


def case_handle(client: Client, case_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(workflow_id_for(case_id))


async def send_command(client: Client, case_id: str, command: Command) -> CommandResult:
    """Run one command as a validated update; raise ``CommandRefused`` naming the rule."""
    name = command.command  # type: ignore[attr-defined]
    try:
        return await case_handle(client, case_id).execute_update(
            name, command, id=f"{name}:{command.idempotency_key}", result_type=CommandResult
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == "DomainError":
            rule = cause.details[0] if cause.details else "unknown"
            raise CommandRefused(str(rule), cause.message) from exc
        raise


async def case_state(client: Client, case_id: str) -> EscalationState:
    return await case_handle(client, case_id).query("state", result_type=EscalationState)
