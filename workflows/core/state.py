"""All the state of one case, in one frozen model changed only by ``evolve``."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workflows.core.calendar import BusinessCalendar
from workflows.core.events import Compensation, Customer, Responder
from workflows.core.policy import Policy
from workflows.core.vocabulary import (
    Category,
    DeadlineKind,
    LifecycleStage,
    PauseReason,
    Priority,
    RootCause,
    Severity,
    SourceKind,
)


class Status(StrEnum):
    OPEN = "open"  # opened, not yet acknowledged
    IN_PROGRESS = "in_progress"
    RESOLUTION_PROPOSED = "resolution_proposed"
    RESOLVED = "resolved"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


# No resolution target ends more than this long (calendar time) after its start, whatever the calendar.
RESOLUTION_CAP = timedelta(days=30)

ACTIVE = frozenset({Status.OPEN, Status.IN_PROGRESS, Status.RESOLUTION_PROPOSED})
# Pausing stops these clocks; the acknowledge clock keeps running (the customer
# must still hear from us while we wait on them).
PAUSABLE = frozenset({DeadlineKind.UPDATE, DeadlineKind.RESOLVE})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Clock(_Frozen):
    """One running deadline: due at ``started_at + length + shift``.

    ``shift`` is the paused time added since the clock started, so a pause moves
    the deadline by exactly the paused time. ``repeat`` marks a repeat breach at
    the top of the matrix (or of the resolution target), which gets no warning.
    """

    kind: DeadlineKind
    started_at: datetime
    length: timedelta
    shift: timedelta = timedelta(0)
    warned: bool = False
    repeat: bool = False
    # The working calendar when the clock runs on business time (``length`` and
    # ``shift`` are then working time). Not serialised: the state re-attaches it
    # from the pinned policy (``attach_calendars``), so a state stays small.
    calendar: BusinessCalendar | None = Field(default=None, exclude=True, repr=False)

    def _capped_target(self) -> datetime | None:
        """The resolution target's 30-calendar-day cap when it binds (it ends sooner than the working time
        counted from the start would), else None."""
        if self.calendar is None or self.kind != DeadlineKind.RESOLVE or self.repeat:
            return None
        cap = self.started_at + RESOLUTION_CAP
        return cap if self.calendar.add(self.started_at, self.length) > cap else None

    @property
    def due_at(self) -> datetime:
        if self.calendar is not None:
            capped = self._capped_target()
            if capped is not None:
                # However the calendar counts, a resolution target ends within 30 calendar days of its start
                # (a "30d" of working time would otherwise land months out). Paused working time still moves
                # it, by as much elapsed time: no jump to the next working day for a one-minute pause.
                return capped + self.shift
            return self.calendar.add(self.started_at, self.length + self.shift)
        return self.started_at + self.length + self.shift

    def warning_at(self, fraction: float) -> datetime | None:
        if self.repeat or self.warned:
            return None
        if self.calendar is not None:
            capped = self._capped_target()
            if capped is not None:  # the same fraction of the capped span, so the warning keeps its lead
                return self.started_at + (capped - self.started_at) * fraction + self.shift
            return self.calendar.add(self.started_at, self.shift + self.length * fraction)
        return self.started_at + self.shift + self.length * fraction

    def after(self, start: datetime, span: timedelta) -> datetime:
        """The instant ``span`` after ``start`` as this clock counts (working time on a calendar)."""
        return self.calendar.add(start, span) if self.calendar is not None else start + span

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Time between two instants as this clock counts it (working time on a calendar)."""
        return self.calendar.between(start, end) if self.calendar is not None else end - start


class PauseInfo(_Frozen):
    reason: PauseReason
    since: datetime
    reminded: bool = False  # the reminder before the pause's maximum is recorded


class PendingRequest(_Frozen):
    by: str
    reason: str
    wanted_level: int
    at: datetime


class Proposal(_Frozen):
    summary: str
    root_cause: RootCause
    root_cause_text: str
    compensation: Compensation | None
    awaiting_compensation_approval: bool
    awaiting_sign_off: bool
    proposed_by: str | None = None


class CaseFacts(_Frozen):
    """Everything about a case but its pinned policy: what the state and the readers' view share."""

    case_id: str
    stream_id: str
    version: int
    policy_hash: str
    policy_label: str
    customer: Customer
    category: Category
    lifecycle_stage: LifecycleStage
    severity: Severity
    priority: Priority
    # The opening set the priority by hand (with its reason): a severity correction keeps it.
    priority_overridden: bool = False
    title: str
    source: SourceKind
    requested_by: str
    # The working calendar's name (a key of policy.calendars), or None: every clock on 24x7 time.
    calendar: str | None = None

    status: Status = Status.OPEN
    level: int = 1
    max_level_reached: int = 1
    owner: str | None = None
    # The team working the case (routing's choice, or a reassignment's), and who answers at its level now.
    team: str | None = None
    responders: list[Responder] = []

    opened_at: datetime
    acknowledged_at: datetime | None = None
    last_update_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    withdrawn_at: datetime | None = None

    paused: PauseInfo | None = None
    paused_seconds: float = 0.0
    clocks: dict[DeadlineKind, Clock] = {}
    pending_request: PendingRequest | None = None
    proposal: Proposal | None = None
    root_cause: RootCause | None = None
    follow_up_due_at: datetime | None = None
    satisfaction: int | None = None

    handoffs: int = 0
    escalations: int = 0
    declined_requests: int = 0
    customer_rejections: int = 0
    reopen_count: int = 0
    warnings: dict[DeadlineKind, int] = {}
    breaches: dict[DeadlineKind, int] = {}
    compensation_paid: Decimal = Decimal(0)
    signals: int = 0


class EscalationState(CaseFacts):
    """All the state of one case: its facts, the pinned policy ``decide`` applies to them, and the
    idempotency bookkeeping ``decide`` consults.

    The bookkeeping is not a fact for readers: it grows with every command, and a view that carried it would
    put all of it into every command's reply, hence into the case's Temporal history once per command
    (quadratic bytes, and a replay after a worker dies that grows with them)."""

    policy: Policy
    # Idempotency keys of the commands that produced events, with their versions.
    # Part of the fold (the key is in each event's envelope), so it survives
    # continue-as-new where Temporal's own update-id dedup does not reach.
    command_keys: dict[str, list[int]] = {}
    # What each of those commands asked (``Command.digest``), where its events recorded it.
    command_digests: dict[str, str] = {}

    @model_validator(mode="after")
    def _calendars_attached(self) -> EscalationState:
        attached = attach_calendars(self)
        if attached is not self:
            object.__setattr__(self, "clocks", attached.clocks)  # on this fresh instance only
        return self

    @property
    def clock_calendar(self) -> BusinessCalendar | None:
        """The calendar this case's clocks run on now (its priority's clock kind decides)."""
        return self.policy.clock_calendar(self.calendar, self.priority)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    def clock_suspended(self, kind: DeadlineKind) -> bool:
        return self.paused is not None and kind in PAUSABLE


def attach_calendars(state: EscalationState) -> EscalationState:
    """``state`` with every clock on the calendar its priority prescribes (the same object if all are)."""
    calendar = state.clock_calendar
    if all(clock.calendar is calendar for clock in state.clocks.values()):
        return state
    clocks = {kind: clock.model_copy(update={"calendar": calendar}) for kind, clock in state.clocks.items()}
    return state.model_copy(update={"clocks": clocks})


def follow_up_due(s: EscalationState) -> datetime | None:
    """When the case's follow-up falls due: recorded by its ``FollowUpDue``, or, for a case closed before
    that fired (closing stops its clocks), its resolution plus the priority's follow-up span."""
    if s.follow_up_due_at is not None:
        return s.follow_up_due_at
    if DeadlineKind.FOLLOW_UP in s.clocks:
        return s.clocks[DeadlineKind.FOLLOW_UP].due_at
    if s.resolved_at is None:
        return None
    span = s.policy.rules(s.priority).follow_up
    calendar = s.clock_calendar
    return calendar.add(s.resolved_at, span) if calendar is not None else s.resolved_at + span


def lifecycle_over(s: EscalationState, now: datetime) -> bool:
    """Whether the case needs no workflow any more: withdrawn, or closed and past its reopen window
    ([resolved_at, resolved_at + reopen_window)). Until then a workflow keeps its clocks and takes commands."""
    if s.status == Status.WITHDRAWN:
        return True
    return s.status == Status.CLOSED and s.resolved_at is not None and now >= s.resolved_at + s.policy.reopen_window
