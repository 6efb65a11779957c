"""What a reader is told about a case: its state without the pinned policy, with its deadlines computed.

``EscalationState`` is the write model: it carries the whole pinned policy so that ``decide`` has every
rule at hand, and only continue-as-new moves it around whole. Replies, queries and case reads answer
with ``CaseView`` instead: every field of the state but ``policy`` (its label and hash stay), plus each
running deadline's due and warning instants as the case's own calendar counts them, so no client has
to redo the calendar maths (or gets it wrong on business hours and pauses).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from workflows.core.events import Customer
from workflows.core.state import Clock, EscalationState, PauseInfo, PendingRequest, Proposal, Status
from workflows.core.vocabulary import (
    Category,
    DeadlineKind,
    LifecycleStage,
    Priority,
    RootCause,
    Severity,
    SourceKind,
)


class DeadlineView(BaseModel):
    """One running deadline. ``due_at`` is on the case's calendar (working time where it has one) and
    includes the paused time added so far; while ``suspended`` (paused), it does not come nearer."""

    model_config = ConfigDict(frozen=True)

    kind: DeadlineKind
    due_at: datetime
    warning_at: datetime | None
    started_at: datetime
    suspended: bool
    repeat: bool


class CaseView(BaseModel):
    """A case as readers see it: every field of ``EscalationState`` but ``policy``, and ``deadlines``.

    The fields are spelled out (not derived) so the schema and the type checker see them;
    ``tests/test_case_view.py`` fails if they drift from the state's.
    """

    model_config = ConfigDict(frozen=True)
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
    # Idempotency keys of the commands that produced events, with their versions.
    # Part of the fold (the key is in each event's envelope), so it survives
    # continue-as-new where Temporal's own update-id dedup does not reach.
    command_keys: dict[str, list[int]] = {}
    # What each of those commands asked (``Command.digest``), where its events recorded it.
    command_digests: dict[str, str] = {}

    deadlines: list[DeadlineView]


def case_view(state: EscalationState) -> CaseView:
    """The view of ``state``: its fields without ``policy``, and its deadlines soonest first."""
    deadlines = sorted(
        (
            DeadlineView(
                kind=kind,
                due_at=clock.due_at,
                warning_at=clock.warning_at(state.policy.warning_at),
                started_at=clock.started_at,
                suspended=state.clock_suspended(kind),
                repeat=clock.repeat,
            )
            for kind, clock in state.clocks.items()
        ),
        key=lambda d: (d.due_at, d.kind.value),
    )
    fields = {name: getattr(state, name) for name in CaseView.model_fields if name != "deadlines"}
    # A view has no policy to re-attach calendars from: its clocks are the plain data (the computed
    # instants are in ``deadlines``), so a view equals itself after a round trip through JSON.
    fields["clocks"] = {kind: clock.model_copy(update={"calendar": None}) for kind, clock in state.clocks.items()}
    return CaseView(**fields, deadlines=deadlines)
