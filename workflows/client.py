"""Client-side contract of ``EscalationWorkflow``: how other code opens and drives a case.

Used by the API, the CLI and the tests. Never imported by workflow code.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.core.case_view import CaseView
from workflows.core.commands import Command, OpenEscalation
from workflows.core.errors import DomainError
from workflows.core.idempotency import check_opening_sent_again
from workflows.escalation_workflow import TASK_QUEUE, WORKFLOW_TASK_TIMEOUT, EscalationWorkflow, workflow_id_for
from workflows.messages import CommandResult, WorkflowInput


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
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        # A case id is used once, forever: a closed case is reopened, never re-created. An opening the
        # workflow refused (failed) leaves the id free for a corrected request.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def open_case_and_wait(client: Client, command: OpenEscalation, *, task_queue: str = TASK_QUEUE) -> CaseView:
    """Start the case (or find it running) and return its view once the opening event is stored.

    One round trip (update-with-start) instead of a start followed by polling queries. Raises
    ``CommandRefused`` (``idempotency.key_reused``) if the case was opened under this command's
    idempotency key by a different request.
    """
    start = WithStartWorkflowOperation(
        EscalationWorkflow.run,
        WorkflowInput(open=command),
        id=workflow_id_for(command.case_id),
        task_queue=task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    try:
        state = await client.execute_update_with_start_workflow(
            "opened", start_workflow_operation=start, result_type=CaseView
        )
    except (WorkflowUpdateFailedError, RPCError) as exc:
        # The workflow may have refused the opening itself (the policy changed since the caller's check):
        # its failure names the rule, and the refusal reaches the caller as such.
        await _raise_refusal_of_opening(client, command.case_id)
        raise exc
    try:
        # This very opening, or another request under its key?
        check_opening_sent_again(state.opened_with_key, state.opened_with_digest, command)
    except DomainError as exc:
        raise CommandRefused(exc.rule, str(exc)) from None
    return state


async def _raise_refusal_of_opening(client: Client, case_id: str) -> None:
    """Raise ``CommandRefused`` if the case's workflow failed with a domain refusal; return otherwise."""
    handle = case_handle(client, case_id)
    try:
        if (await handle.describe()).status != WorkflowExecutionStatus.FAILED:
            return  # running (a transient failure) or ended otherwise: not a refusal of the opening
        await asyncio.wait_for(handle.result(), timeout=10)
    except WorkflowFailureError as failure:
        cause = failure.cause
        if isinstance(cause, ApplicationError) and cause.type == "DomainError":
            rule = cause.details[0] if cause.details else "unknown"
            raise CommandRefused(str(rule), cause.message) from None
    except (RPCError, TimeoutError):
        return


def case_handle(client: Client, case_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(workflow_id_for(case_id))


# How long a command waits out a transient refusal (``_transient``) before the error reaches the caller.
NOT_READY_PATIENCE = timedelta(seconds=30)
MAX_RESEND_DELAY = 2.0  # seconds: the longest wait between two sendings of a command
IN_FLIGHT_RESEND_DELAY = 1.0  # the same, when the case had too many updates in flight


async def send_command(client: Client, case_id: str, command: Command) -> CommandResult:
    """Run one command as a validated update; raise ``CommandRefused`` naming the rule.

    Temporal refuses an update while the case's last workflow task is being
    retried (``WorkflowNotReady``: e.g. its worker was killed mid-task), while
    too many updates are in flight on the case, or aborts it under contention;
    these clear by themselves, so the update is sent again, after a jittered backoff, for
    ``NOT_READY_PATIENCE``. The update id makes a resend safe.
    """
    name = command.command  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    give_up = loop.time() + NOT_READY_PATIENCE.total_seconds()
    ceiling = 0.2
    while True:
        try:
            return await _update(client, case_id, name, command)
        except RPCError as exc:
            # Jittered: commands refused together (over the in-flight limit) come back spread out, each as a
            # slot frees, not in waves a fixed backoff apart with the case's slots idle in between. A slot frees
            # within a command's time, so those are sent again sooner than the refusals that wait on a retried
            # workflow task (seconds), which would only add calls to the server.
            delay = random.uniform(0.05, ceiling)
            if not _transient(exc) or loop.time() + delay > give_up:
                raise
            await asyncio.sleep(delay)
            ceiling = min(ceiling * 2, IN_FLIGHT_RESEND_DELAY if _over_in_flight_limit(exc) else MAX_RESEND_DELAY)


def _transient(exc: RPCError) -> bool:
    """Refusals that clear by themselves: the case's workflow task is being retried; the server's
    limit of updates in flight on one workflow (10 by default) is reached; or the server aborted the
    update with the workflow task it rode in (contention), after the SDK's own few retries."""
    return (
        (exc.status == RPCStatusCode.FAILED_PRECONDITION and "Workflow Task in failed state" in exc.message)
        or _over_in_flight_limit(exc)
        or (exc.status == RPCStatusCode.UNAVAILABLE and "update was aborted" in exc.message)
    )


def _over_in_flight_limit(exc: RPCError) -> bool:
    return exc.status == RPCStatusCode.RESOURCE_EXHAUSTED and "in-flight updates" in exc.message


async def _update(client: Client, case_id: str, name: str, command: Command) -> CommandResult:
    try:
        return await case_handle(client, case_id).execute_update(
            # The digest is part of the update id: Temporal answers a repeated id with the first
            # outcome, so a different request under a reused key must reach the workflow to be refused.
            name,
            command,
            id=f"{name}:{command.idempotency_key}:{command.digest()[:16]}",
            result_type=CommandResult,
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == "DomainError":
            rule = cause.details[0] if cause.details else "unknown"
            raise CommandRefused(str(rule), cause.message) from exc
        raise


async def case_state(client: Client, case_id: str) -> CaseView:
    """The case as its running workflow holds it. For tests and diagnostics only: readers are answered
    from the event store, which keeps a case after Temporal has deleted its workflow's history."""
    return await case_handle(client, case_id).query("state", result_type=CaseView)
