"""``EscalationWorkflow``: the thin, durable driver of one case.

It owns no business rules. For every command it runs ``decide`` against the
current state, appends the resulting events through a local activity, and only
then folds them into its state with ``evolve`` (invariant 2 of docs/architecture.md). One timer loop,
recomputed from the state after every event, turns deadlines into
``DeadlineReached`` ticks (invariant 6 of docs/architecture.md).

Determinism (invariant 7 of docs/architecture.md): time comes from ``workflow.now()``, event ids from
the stream position (``case_event_id``), logs from ``workflow.logger``; the domain modules are pure
and passed through the sandbox; nothing that does I/O is imported here.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.contract import (
        APPEND_EVENTS,
        CURRENT_POLICY,
        CURRENT_POLICY_REFERENCE,
        NON_RETRYABLE_APPEND_ERRORS,
        OPENING_CONTEXT,
        RESOLVE_RESPONDERS,
        AppendReply,
        AppendRequest,
        OpeningRequest,
        PolicyReference,
        RespondersRequest,
    )
    from activities.policy_library import policy_for
    from workflows.core.case_view import CaseView, case_view
    from workflows.core.commands import COMMAND_CLASSES, SPECS, Command, DeadlineReached
    from workflows.core.decide import decide, decide_open, envelopes, levels_reached, next_wake, with_responders
    from workflows.core.directory import OpeningContext, level_specs
    from workflows.core.errors import DomainError
    from workflows.core.events import (
        SYSTEM_ACTOR,
        Actor,
        EventData,
        RecordedEvent,
        Responder,
        case_event_id,
        stream_id_for,
    )
    from workflows.core.evolve import evolve
    from workflows.core.idempotency import repeated_versions
    from workflows.core.policy import Policy
    from workflows.core.state import EscalationState, Status, lifecycle_over
    from workflows.messages import MAX_EVENTS_PER_RUN, CommandResult, WorkflowInput

WORKFLOW_TYPE = "EscalationWorkflow"
TASK_QUEUE = "escalations"
# A workflow task's start-to-close timeout (Temporal's default is 10 s). A task in flight on a worker that
# dies is handed to another worker only after this long: one part of a deadline's lateness after a crash.
# It must also hold a whole run's replay by a worker that takes a case over (at most MAX_EVENTS_PER_RUN
# events: about a second on a loaded machine), or the task times out on every attempt and the case is stuck.
# 3 s was tried: no better lateness after kills (chaos p99 5.45 s against 5.05 s with 5 s), and in the two-hour
# soak two long-running cases (339 and 869 events in one run) ended with their workflow task failing for good.
# With 5 s, the tasks in flight at a kill were the breaches stored just over 5 s late, and they alone held the
# chaos p99 above its 5 s target; 4 s puts them under it with a run's replay still well inside the timeout.
# Set at opening and again at each continue-as-new.
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=4)
SIGNALS = tuple(name for name, spec in SPECS.items() if spec.signal)  # facts sent without waiting
UPDATES = tuple(SPECS)  # every command to an existing case, as declared

# An append waits out a database outage by retrying (a case never fails for it). Attempts are capped
# 1 s apart so an append tries again within a second of the outage's end (2 s had left breaches of a 4 s
# cut more than 5 s late); each attempt during the outage is one refused connection, cheap for the worker
# and for PostgreSQL.
_APPEND_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=1),
    non_retryable_error_types=NON_RETRYABLE_APPEND_ERRORS,
)


# Workflows started before the directory existed replay without its lookups (their histories hold none).
DIRECTORY_PATCH = "directory-lookups"
# Before a command, deadlines are enforced until none is due at the instant it is decided, and its events
# carry that instant; histories recorded before enforced once and stamped the append's instant.
ENFORCE_UNTIL_NONE_DUE_PATCH = "enforce-until-none-due"
# The case's policy is fetched as a reference (its content hash) and taken from the worker's policy library,
# and an append answers with receipts instead of echoing the events sent: Temporal's history no longer keeps
# the policy twice in full. Histories recorded before fetched the policy whole and kept the echoed events.
COMPACT_HISTORY_PATCH = "compact-history"
_LOOKUP_TIMEOUT = timedelta(seconds=10)
_APPEND_TIMEOUT = timedelta(seconds=30)


def workflow_id_for(case_id: str) -> str:
    """The public workflow id (the public contract in docs/architecture.md); by design the same string as the case's stream id."""
    return stream_id_for(case_id)


class EscalationWorkflow:
    """One case (see module doc). Its command updates and signals are attached below the class."""

    @workflow.init
    def __init__(self, input: WorkflowInput) -> None:
        self._state: EscalationState | None = input.carried
        # One append at a time: versions are assigned from the state, so two
        # concurrent handlers must not both decide against the same version.
        self._lock = asyncio.Lock()
        self._changed = False
        self._events_this_run = 0
        self._max_events_per_run = input.max_events_per_run

    # ------------------------------------------------------------------ main loop

    @workflow.run
    async def run(self, input: WorkflowInput) -> CaseView:
        if self._state is None:
            await self._open(input)
        while not self._finished():
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    WorkflowInput(
                        carried=self._state,
                        # A case opened when runs were longer (2,000 events) takes today's bound from here.
                        max_events_per_run=min(self._max_events_per_run, MAX_EVENTS_PER_RUN),
                    ),
                    # Set, not inherited: a case opened under an older (longer) timeout takes today's here.
                    task_timeout=WORKFLOW_TASK_TIMEOUT,
                )
            wake = self._next_wake()
            self._changed = False
            if wake is None:
                await workflow.wait_condition(lambda: self._changed or self._should_continue_as_new())
                continue
            delay = (wake - workflow.now()).total_seconds()
            if delay > 0:
                try:
                    await workflow.wait_condition(
                        lambda: self._changed or self._should_continue_as_new(), timeout=delay
                    )
                    continue  # state changed: recompute the next deadline
                except TimeoutError:
                    pass
            if not await self._tick():
                # next_wake and decide share one notion of "due", so a tick at or
                # after the wake instant always produces events; never spin if not.
                workflow.logger.error(
                    f"deadline tick produced nothing: wake {wake.isoformat()}, now {workflow.now().isoformat()}, "
                    f"version {self._current().version}"
                )
                await workflow.sleep(1)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state()

    async def _open(self, input: WorkflowInput) -> None:
        if input.open is None:
            raise ApplicationError("workflow input carries neither a case to open nor a state", non_retryable=True)
        policy = await self._policy_in_force()
        context = None
        if workflow.patched(DIRECTORY_PATCH):
            context = await workflow.execute_local_activity(
                OPENING_CONTEXT,
                OpeningRequest(command=input.open, policy=policy),
                result_type=OpeningContext,
                start_to_close_timeout=_LOOKUP_TIMEOUT,
                retry_policy=_APPEND_RETRY,
            )
        try:
            payloads = decide_open(input.open, policy, context)
        except DomainError as exc:
            raise ApplicationError(str(exc), exc.rule, type="DomainError", non_retryable=True) from exc
        async with self._lock:
            recorded = await self._append(
                stream_id_for(input.open.case_id),
                payloads,
                actor=input.open.actor,
                command_key=input.open.idempotency_key,
                command_digest=input.open.digest(),
                correlation_id=input.open.correlation_id,
            )
        if recorded[0].command_key != input.open.idempotency_key:
            # The stream was opened by another command: this workflow is not its case's
            # (only possible if Temporal lost the first workflow). Adopt nothing.
            rule = "open.case_exists"
            raise ApplicationError(
                f'rule "{rule}": case {input.open.case_id!r} is already stored, opened by another command',
                rule,
                type="DomainError",
                non_retryable=True,
            )

    async def _policy_in_force(self) -> Policy:
        """The policy a new case pins: by reference, from the policy library (see COMPACT_HISTORY_PATCH)."""
        if not workflow.patched(COMPACT_HISTORY_PATCH):
            return await workflow.execute_local_activity(
                CURRENT_POLICY, result_type=Policy, start_to_close_timeout=_LOOKUP_TIMEOUT, retry_policy=_APPEND_RETRY
            )
        reference = await workflow.execute_local_activity(
            CURRENT_POLICY_REFERENCE,
            result_type=PolicyReference,
            start_to_close_timeout=_LOOKUP_TIMEOUT,
            retry_policy=_APPEND_RETRY,
        )
        # Not found (a worker that never saw it, its store unreachable) fails this workflow task, which
        # Temporal retries; the case waits, it does not fail (activities/policy_library.py).
        return policy_for(reference.content_hash)

    async def _tick(self) -> bool:
        """Enforce what is due now; False only if something was due and nothing came of it."""
        async with self._lock:
            if self._finished():
                return True
            wake = self._next_wake()
            if wake is None or wake > workflow.now():
                # A command that held the lock when the timer fired (one arriving in the
                # same workflow task, e.g. an acknowledgement) stopped or moved the clock.
                return True
            return await self._enforce_due()

    async def _enforce_due(self) -> bool:
        """Record every deadline due by now (caller holds the lock); True if any was."""
        state = self._current()
        payloads = await self._with_responders(state, decide(state, DeadlineReached(), workflow.now()))
        if payloads:
            await self._append(state.stream_id, payloads, actor=SYSTEM_ACTOR, command_key=None)
        return bool(payloads)

    async def _with_responders(self, state: EscalationState, payloads: list[EventData]) -> list[EventData]:
        """``payloads`` with each move to a level naming its responders, looked up in the directory now."""
        levels = levels_reached(payloads)
        if not levels or not workflow.patched(DIRECTORY_PATCH):
            return payloads
        specs = [spec for level in levels for spec in level_specs(state.policy.level(level))]
        if not specs:
            return payloads
        resolved = await workflow.execute_local_activity(
            RESOLVE_RESPONDERS,
            RespondersRequest(
                specs=specs,
                team=state.team,
                owner=state.owner,
                category=state.category,
                customer_id=state.customer.id,
            ),
            result_type=dict[str, list[Responder]],
            start_to_close_timeout=_LOOKUP_TIMEOUT,
            retry_policy=_APPEND_RETRY,
        )
        return with_responders(state, payloads, resolved)

    def _next_wake(self):  # -> datetime | None
        state = self._current()
        if state.status == Status.CLOSED and state.resolved_at is not None:
            return state.resolved_at + state.policy.reopen_window
        return next_wake(state)

    def _finished(self) -> bool:
        return lifecycle_over(self._current(), workflow.now())

    def _should_continue_as_new(self) -> bool:
        return self._events_this_run >= self._max_events_per_run or workflow.info().is_continue_as_new_suggested()

    # ------------------------------------------------------------------ appending

    async def _append(
        self,
        stream_id: str,
        payloads: list[EventData],
        *,
        actor: Actor,
        command_key: str | None,
        command_digest: str | None = None,
        correlation_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> list[RecordedEvent]:
        """Store ``payloads`` first, then fold what was stored (caller holds the lock). ``occurred_at``: when
        they happened (the instant they were decided); now by default."""
        version = self._state.version if self._state is not None else 0
        new = envelopes(
            stream_id,
            version,
            payloads,
            actor=actor,
            now=occurred_at or workflow.now(),
            ids=[case_event_id(stream_id, version + offset) for offset in range(1, len(payloads) + 1)],
            command_key=command_key,
            command_digest=command_digest,
            correlation_id=correlation_id,
        )
        recorded = await self._store(AppendRequest(stream_id=stream_id, expected_version=version, events=new))
        for event in recorded:
            self._state = evolve(self._state, event)
        self._events_this_run += len(recorded)
        self._changed = True
        return recorded

    async def _store(self, request: AppendRequest) -> list[RecordedEvent]:
        """The append's local activity; the events as recorded (see COMPACT_HISTORY_PATCH)."""
        if not workflow.patched(COMPACT_HISTORY_PATCH):
            return await workflow.execute_local_activity(
                APPEND_EVENTS,
                request,
                result_type=list[RecordedEvent],
                start_to_close_timeout=_APPEND_TIMEOUT,
                retry_policy=_APPEND_RETRY,
            )
        reply = await workflow.execute_local_activity(
            APPEND_EVENTS,
            request.model_copy(update={"receipts": True}),
            result_type=AppendReply,
            start_to_close_timeout=_APPEND_TIMEOUT,
            retry_policy=_APPEND_RETRY,
        )
        return reply.recorded(request.events)

    # ------------------------------------------------------------------ handlers

    async def _execute(self, command: Command) -> CommandResult:
        # Handlers can run before `run` has stored the opening event.
        await workflow.wait_condition(lambda: self._state is not None)
        async with self._lock:
            # A deadline that fell due before this command is a fact first: when the
            # timer and the command arrive in one workflow task (late, after a worker
            # crash or an outage), the command must not erase the breach it followed.
            until_none_due = workflow.patched(ENFORCE_UNTIL_NONE_DUE_PATCH)
            if not until_none_due:
                await self._enforce_due()
            while True:
                if until_none_due:
                    # An append can span workflow tasks (a slow local activity heartbeats its task), and the
                    # clock moves with them: enforce until nothing is due at the instant the command is decided.
                    while await self._enforce_due():
                        pass
                state = self._current()
                decided_at = workflow.now()
                try:
                    seen = repeated_versions(state, command)
                    if seen is not None:
                        return CommandResult(duplicate=True, versions=seen, events=[], state=case_view(state))
                    payloads = decide(state, command, decided_at)
                except DomainError as exc:
                    raise ApplicationError(str(exc), exc.rule, type="DomainError", non_retryable=True) from exc
                payloads = await self._with_responders(state, payloads)
                recorded = await self._append(
                    state.stream_id,
                    payloads,
                    actor=command.actor,
                    command_key=command.idempotency_key,
                    command_digest=command.digest(),
                    correlation_id=command.correlation_id,
                    # The events happened when they were decided, not when the responders' lookup returned.
                    occurred_at=decided_at if until_none_due else None,
                )
                if all(e.command_key == command.idempotency_key for e in recorded):
                    return CommandResult(
                        duplicate=False, versions=[e.version for e in recorded], events=recorded, state=self.state()
                    )
                # The store already held another command's events at this version: a
                # workflow task that Temporal discarded (an aborted speculative update
                # task) had appended them before this run replayed. They are the record
                # and are now folded; this command is decided again against them.
                workflow.logger.warning(
                    "store held another command's events; deciding again",
                    extra={"command_key": command.idempotency_key, "versions": [e.version for e in recorded]},
                )

    def _validate(self, command: Command) -> None:
        """Reject before anything reaches history; the handler re-decides under the lock."""
        if self._state is None:
            return
        try:
            if repeated_versions(self._state, command) is None:
                decide(self._state, command, workflow.now())
        except DomainError as exc:
            raise ApplicationError(str(exc), exc.rule, type="DomainError", non_retryable=True) from exc

    @workflow.update(name="opened")
    async def opened(self) -> CaseView:
        """Answers once the opening event is stored (sent with the start: update-with-start)."""
        await workflow.wait_condition(lambda: self._state is not None)
        return self.state()

    @workflow.query(name="state")
    def state(self) -> CaseView:
        """The case as its workflow holds it now (the view; the event store remains the record)."""
        return case_view(self._current())

    def _current(self) -> EscalationState:
        if self._state is None:
            raise ApplicationError("the case is not stored yet", type="NotReady")
        return self._state


# One update per human command and one signal per fire-and-forget fact, defined
# once on the class (not per workflow instance: at 10,000 open cases that was
# ~40 handler objects each). Payloads arrive as plain JSON and are parsed by
# `_parse`, not by the data converter, so a malformed command is refused with a
# named rule too; the handlers carry no type hints for Temporal to resolve.


def _command_update(name: str) -> Any:
    command_class = COMMAND_CLASSES[name]

    async def handler(self, raw):  # noqa: ANN001, ANN202
        return await self._execute(_parse(command_class, raw))

    def validator(self, raw):  # noqa: ANN001, ANN202
        self._validate(_parse(command_class, raw))

    handler.__name__ = handler.__qualname__ = f"update_{name}"
    update = workflow.update(name=name)(handler)
    update.validator(validator)
    return update


def _command_signal(name: str) -> Any:
    command_class = COMMAND_CLASSES[name]

    async def handler(self, raw):  # noqa: ANN001, ANN202
        try:
            await self._execute(_parse(command_class, raw))
        except ApplicationError as exc:
            # A signal has no caller to answer; the refusal is logged, nothing is written.
            workflow.logger.warning("signal refused", extra={"command": command_class.__name__, "error": str(exc)})

    handler.__name__ = handler.__qualname__ = f"signal_{name}"
    return workflow.signal(name=name)(handler)


for _name in UPDATES:
    setattr(EscalationWorkflow, f"update_{_name}", _command_update(_name))
for _name in SIGNALS:
    setattr(EscalationWorkflow, f"signal_{_name}", _command_signal(_name))
workflow.defn(name=WORKFLOW_TYPE)(EscalationWorkflow)  # registers the class in place (it returns it)


def _parse(command_class: type[Command], raw: Any) -> Command:
    try:
        return command_class.model_validate(raw)
    except ValidationError as exc:
        rule = "command.malformed"
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        name = command_class.model_fields["command"].default
        raise ApplicationError(
            f'rule "{rule}": invalid {name} command: {problems}', rule, type="DomainError", non_retryable=True
        ) from None
