"""What the API's routes run: opening a case, running a command, reading a case.

Routes parse and authenticate; these operations talk to Temporal (writes go through the case's
workflow) and to PostgreSQL (every read answers from the event store or a read model). Each raises
``Problem`` with the rule that refused it; nothing here knows about HTTP beyond that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem, not_found, refusal
from api.reply_folds import ReplyFolds
from events import policy_versions
from events.directory_store import DirectoryStore
from events.log_keys import LogSigner
from events.store import EventStore
from projections import queries
from projections.ack_links import AckLinks
from projections.channels import ChannelsConfig
from projections.watchdog import DEFAULT_MARGIN
from workflows.client import CommandRefused, open_case_and_wait, send_command
from workflows.core.case_view import CaseView, case_view
from workflows.core.commands import AssignOwner, Command, OpenEscalation
from workflows.core.decide import available_commands, decide_open
from workflows.core.directory import OpeningContext
from workflows.core.errors import DomainError
from workflows.core.events import RecordedEvent, stream_id_for
from workflows.core.evolve import fold
from workflows.core.idempotency import check_opening_sent_again
from workflows.core.policy import Policy
from workflows.core.state import EscalationState
from workflows.core.vocabulary import Role
from workflows.directory_files import team_calendar


@dataclass(frozen=True)
class Outcome:
    """A command's reply: the events it stored (the first delivery's, for a repeat) and the case after."""

    duplicate: bool
    events: list[RecordedEvent]
    state: CaseView
    warnings: list[str] = field(default_factory=list)


@dataclass
class Services:
    pool: asyncpg.Pool
    client: Client
    policy: Policy
    task_queue: str
    # The notification channels configured (readiness reports what they lack) and the signer of
    # acknowledgement links (None: messages carry none, and a link is refused).
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)
    links: AckLinks | None = None
    # The transparency log's signing key: publishes its public half, signs a checkpoint a bundle needs
    # (None: no key configured; the key route answers 503 log.no_key).
    log_signer: LogSigner | None = None
    # How far past due a deadline with no breach stored may be before /readyz reports it (the watchdog).
    watchdog_margin: timedelta = DEFAULT_MARGIN
    # The last folds of the cases this process answered commands for (made from ``pool``).
    reply_folds: ReplyFolds = field(init=False)

    def __post_init__(self) -> None:
        self.reply_folds = ReplyFolds(self.pool)

    @property
    def store(self) -> EventStore:
        return EventStore(self.pool)

    @property
    def directory(self) -> DirectoryStore:
        return DirectoryStore(self.pool, team_calendar)

    async def policy_in_force(self) -> Policy:
        """The policy new cases are opened under: the latest published version, else ``policy``."""
        return await policy_versions.policy_in_force(self.pool, self.policy)()

    # ------------------------------------------------------------------------ reads (the store only)

    async def case_state(self, case_id: str) -> EscalationState:
        """The case folded from the event store; 404 ``case.unknown`` if the store does not hold it."""
        try:
            return await queries.case_state(self.store, case_id)
        except queries.CaseNotFound:
            raise not_found(f"case {case_id!r}") from None

    async def read_case(self, case_id: str) -> CaseView:
        try:
            return await queries.read_case(self.store, case_id)
        except queries.CaseNotFound:
            raise not_found(f"case {case_id!r}") from None

    async def commands_for(self, case_id: str, role: Role) -> list[str]:
        """The commands ``role`` may run on the case now, by the rules the workflow applies."""
        return available_commands(await self.case_state(case_id), role, datetime.now(UTC))

    # ------------------------------------------------------------------------ writes (through the workflow)

    async def open_case(self, command: OpenEscalation) -> Outcome:
        """Open the case; 409 ``open.case_exists`` if another request opened that case id."""
        try:
            # Permission, override and calendar rules, before starting anything, under the
            # version the worker will pin (the latest published; the file until one is).
            decide_open(
                command,
                await self.policy_in_force(),
                OpeningContext(account=await self.directory.account(command.customer.id)),
            )
        except DomainError as exc:
            raise refusal(exc.rule, str(exc)) from None
        stored = await self.store.read_stream(stream_id_for(command.case_id))
        if stored:
            # Stored already: never start a workflow for it again (its own may have finished). The same
            # request again is answered with what is stored; another request is refused.
            _check_opened_by(stored, command)
            folded = fold(stored)
            assert folded is not None  # a stored stream folds to a case
            return Outcome(duplicate=False, events=stored[:1], state=case_view(folded))
        try:
            await open_case_and_wait(self.client, command, task_queue=self.task_queue)
        except CommandRefused as exc:
            # Also a refusal raised inside the workflow at open (the policy changed since the check).
            raise refusal(exc.rule, str(exc)) from None
        except WorkflowUpdateFailedError as exc:
            raise Problem(409, "Conflict", f"the case was not opened: {exc.cause}", rule="command.failed") from None
        events = await self.store.read_stream(stream_id_for(command.case_id))
        _check_opened_by(events, command)  # the workflow may have been running already, opened by another
        return Outcome(duplicate=False, events=events[:1], state=_view_of(events))

    async def run_command(self, case_id: str, command: Command) -> Outcome:
        """Run ``command`` on the case; refusals name their rule (403/409/422), an unknown case is 404."""
        try:
            result = await send_command(self.client, case_id, command)
        except CommandRefused as exc:
            raise refusal(exc.rule, str(exc)) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                await self.case_state(case_id)  # 404 if the store never held it
                raise Problem(
                    409, "Conflict", f"case {case_id!r} has finished and accepts no commands", rule="case.finished"
                ) from None
            raise
        except WorkflowUpdateFailedError as exc:
            raise Problem(409, "Conflict", f"command failed: {exc.cause}", rule="command.failed") from None
        # The reply shows the case as the store holds it, not the workflow's memory: a text erased since the
        # workflow loaded it must read as erased here too (ReplyFolds reads only what its last fold lacks).
        wanted = set(result.versions) if result.duplicate else {e.version for e in result.events}
        stored, folded = await self.reply_folds.read(stream_id_for(case_id), min(wanted, default=1))
        assert folded is not None  # the workflow stored the case before it answered
        events = [e for e in stored if e.version in wanted]
        state = case_view(folded)
        warnings = await self._assignment_warnings(command, state) if isinstance(command, AssignOwner) else []
        return Outcome(duplicate=result.duplicate, events=events, state=state, warnings=warnings)

    async def _assignment_warnings(self, command: AssignOwner, case: CaseView) -> list[str]:
        """An assignment is never refused for who it names, but the caller hears when the new owner is not
        in the directory or is outside the team's working hours (in their own time zone)."""
        try:
            working = await self.directory.is_working(command.owner, case.team, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - the assignment is stored: a failed lookup is only a warning
            return [f"assign.working_hours_unknown: {type(exc).__name__}"]
        if working is None:
            return [f"assign.unknown_person: {command.owner!r} is not in the directory"]
        if not working:
            return [
                f"assign.outside_working_hours: {command.owner!r} is outside team {case.team!r}'s working hours now"
            ]
        return []


def _check_opened_by(events: list[RecordedEvent], command: OpenEscalation) -> None:
    """Return if ``command`` is the request whose event opened the case; else 409 ``open.case_exists`` (another
    key opened it) or 422 ``idempotency.key_reused`` (this key, another request)."""
    first = events[0] if events else None
    try:
        this = check_opening_sent_again(
            first.command_key if first else None, first.command_digest if first else None, command
        )
    except DomainError as exc:
        raise refusal(exc.rule, str(exc)) from None
    if not this:
        raise Problem(409, "Conflict", f"case {command.case_id!r} exists already", rule="open.case_exists")


def _view_of(events: list[RecordedEvent]) -> CaseView:
    folded = fold(events)
    assert folded is not None  # the workflow stored the case before it answered
    return case_view(folded)
