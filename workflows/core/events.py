"""The event language: one frozen pydantic model per event type, and the envelope.

Contract:
* ``type`` strings are stable forever; payload fields may be added (with defaults)
  but never renamed or removed, because stored events must keep parsing.
* Events are facts in the past tense. They carry no behaviour; ``workflows.core.evolve``
  gives them meaning.
* ``NewEvent`` is what the domain produces; ``RecordedEvent`` is what the store
  returns after appending it (global position, recorded time and the hash chain).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args
from uuid import UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from workflows.core.vocabulary import (
    Category,
    CompensationKind,
    CustomerTier,
    DeadlineKind,
    EscalationCause,
    LifecycleStage,
    NoteVisibility,
    PauseReason,
    PolicyChangeMode,
    Priority,
    Role,
    RootCause,
    RoutingStrategy,
    Severity,
    SignalKind,
    SourceKind,
    WithdrawReason,
)

# Text limits are part of the contract: they keep a hostile caller from storing
# megabytes in one event, and control characters out of audit trails.
_NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=r"^[^\x00-\x1f\x7f]+$")
]
# Case ids travel in URLs, workflow ids and file names: a conservative charset.
CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
CaseId = Annotated[str, StringConstraints(pattern=CASE_ID_PATTERN)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True, pattern=_NO_CONTROL)]
LongText = Annotated[
    str, StringConstraints(min_length=1, max_length=10_000, strip_whitespace=True, pattern=_NO_CONTROL)
]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("1000000000"), max_digits=14, decimal_places=2)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Frozen):
    """Who caused an event: a person or service with a role, or the system itself."""

    id: Identifier
    role: Role


SYSTEM_ACTOR = Actor(id="system", role=Role.SYSTEM)


NO_CALENDAR = "24x7"  # a case whose clocks all run on elapsed time


class Customer(Frozen):
    id: Identifier
    name: ShortText
    tier: CustomerTier
    annual_value: Money = Decimal(0)
    # The customer's working calendar (a calendar the policy names); None: the policy's default.
    calendar: Identifier | None = None
    # The person at the customer this case is about or with (personal data: sealed where the policy says).
    contact: ShortText | None = None


class CustomerInput(Frozen):
    """The customer as a caller sends it at open: the id alone is enough when its account is stored
    (the opening event then records the account's name, tier and value)."""

    id: Identifier
    name: ShortText | None = None
    tier: CustomerTier | None = None
    annual_value: Money | None = None
    calendar: Identifier | None = None
    contact: ShortText | None = None


class Responder(Frozen):
    """A person who answers at a level, as the directory named them at that moment."""

    id: Identifier
    name: str | None = None
    via: str  # the responder spec that named them, e.g. "role:escalation_manager"


class RouteCandidate(Frozen):
    """A member of the team a case was routed to, as the directory and the case list showed them then."""

    person: Identifier
    active_cases: Annotated[int, Field(ge=0)]
    working_now: bool
    last_routed_at: AwareDatetime | None = None
    on_call_rank: Annotated[int, Field(ge=0)] | None = None  # place in the team's on-call list


class Route(Frozen):
    """How a new case was routed: the rule that matched (``default``: none did), the team, the strategy,
    the candidates considered and the owner chosen (None: it waits in the team's queue), and why."""

    rule: ShortText
    team: Identifier
    strategy: RoutingStrategy
    owner: Identifier | None
    why: ShortText
    candidates: list[RouteCandidate] = []
    responders: list[Responder] = []  # who answers at level 1
    # Whether the directory held the team (None: the directory was not consulted), so a shadow run
    # can rebuild exactly what routing saw from the record alone.
    team_known: bool | None = None


class Compensation(Frozen):
    kind: CompensationKind
    amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"


class EarlyWarningSignal(Frozen):
    kind: SignalKind
    value: float
    detail: ShortText | None = None


# --------------------------------------------------------------------------- payloads


class Opened(Frozen):
    type: Literal["escalation.opened"] = "escalation.opened"
    case_id: CaseId
    customer: Customer
    category: Category
    lifecycle_stage: LifecycleStage
    severity: Severity
    priority: Priority
    priority_override_reason: ShortText | None = None
    title: ShortText
    description: LongText
    source: SourceKind
    requested_by: Identifier
    signal: EarlyWarningSignal | None = None
    policy_label: ShortText
    policy_hash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    # The full validated policy content, so replay never depends on the file on disk.
    policy: dict[str, Any]
    # The case's working calendar (a key of the pinned policy's calendars), or NO_CALENDAR.
    calendar: ShortText = "24x7"
    # Where the policy's routing rules sent the case (None: a policy without routing rules).
    route: Route | None = None


class PriorityChanged(Frozen):
    type: Literal["escalation.priority_changed"] = "escalation.priority_changed"
    from_priority: Priority
    to_priority: Priority
    reason: ShortText


Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
PolicyHash = Sha256Hex
CommandDigest = Sha256Hex


class DeadlineMove(Frozen):
    kind: DeadlineKind
    from_due: AwareDatetime | None  # None: the clock did not run before
    to_due: AwareDatetime | None  # None: the clock no longer runs


class PolicyChanged(Frozen):
    """An open case's policy decision (see ``PolicyChangeMode``); earlier events are untouched."""

    type: Literal["escalation.policy_changed"] = "escalation.policy_changed"
    mode: PolicyChangeMode
    from_hash: PolicyHash
    to_hash: PolicyHash
    policy_label: ShortText
    # The new version's full content (None when the case keeps its pinned version).
    policy: dict[str, Any] | None
    reason: ShortText
    moved: list[DeadlineMove] = []


class OwnerAssigned(Frozen):
    type: Literal["escalation.owner_assigned"] = "escalation.owner_assigned"
    owner: Identifier
    previous_owner: Identifier | None
    is_handoff: bool
    reason: ShortText | None = None
    # The team the owner works the case for (None: the case's team is unchanged).
    team: Identifier | None = None
    from_team: Identifier | None = None


class Acknowledged(Frozen):
    type: Literal["escalation.acknowledged"] = "escalation.acknowledged"
    by: Identifier
    level: int


class NoteAdded(Frozen):
    type: Literal["escalation.note_added"] = "escalation.note_added"
    visibility: NoteVisibility
    text: LongText


class EscalationRequested(Frozen):
    type: Literal["escalation.escalation_requested"] = "escalation.escalation_requested"
    by: Identifier
    reason: ShortText
    wanted_level: int


class EscalationDeclined(Frozen):
    type: Literal["escalation.escalation_declined"] = "escalation.escalation_declined"
    by: Identifier
    reason: ShortText


class Escalated(Frozen):
    type: Literal["escalation.escalated"] = "escalation.escalated"
    from_level: int
    to_level: int
    cause: EscalationCause
    reason: ShortText | None = None
    # Who answers at the new level, resolved from the directory when the case reached it.
    responders: list[Responder] = []


class DeEscalated(Frozen):
    type: Literal["escalation.de_escalated"] = "escalation.de_escalated"
    from_level: int
    to_level: int
    reason: ShortText
    responders: list[Responder] = []


class Paused(Frozen):
    type: Literal["escalation.paused"] = "escalation.paused"
    reason: PauseReason
    note: ShortText | None = None


class Resumed(Frozen):
    type: Literal["escalation.resumed"] = "escalation.resumed"
    paused_seconds: float
    # True when the pause reached the policy's maximum for its reason and the system resumed it.
    automatic: bool = False


class PauseExpiring(Frozen):
    """A reminder: the case's pause reaches the policy's maximum at ``ends_at`` and resumes then."""

    type: Literal["escalation.pause_expiring"] = "escalation.pause_expiring"
    reason: PauseReason
    ends_at: AwareDatetime
    detected_at: AwareDatetime


class DeadlineWarning(Frozen):
    type: Literal["escalation.deadline_warning"] = "escalation.deadline_warning"
    kind: DeadlineKind
    level: int
    due_at: AwareDatetime
    detected_at: AwareDatetime


class DeadlineBreached(Frozen):
    type: Literal["escalation.deadline_breached"] = "escalation.deadline_breached"
    kind: DeadlineKind
    level: int
    due_at: AwareDatetime
    detected_at: AwareDatetime
    # When the same clock fires again (re-armed for the next level, the update
    # cadence, or the repeat interval at the top); None when it does not.
    next_due_at: AwareDatetime | None


class ResolutionProposed(Frozen):
    type: Literal["escalation.resolution_proposed"] = "escalation.resolution_proposed"
    summary: LongText
    root_cause: RootCause
    root_cause_text: ShortText
    compensation: Compensation | None = None
    needs_compensation_approval: bool
    needs_sign_off: bool
    # Who proposed it (absent on events stored before it was recorded): the four-eyes rule's other pair.
    proposed_by: Identifier | None = None


class CompensationDecided(Frozen):
    type: Literal["escalation.compensation_decided"] = "escalation.compensation_decided"
    approved: bool
    amount: Money
    by: Identifier
    reason: ShortText | None = None


class SignedOff(Frozen):
    type: Literal["escalation.signed_off"] = "escalation.signed_off"
    by: Identifier


class CustomerResponded(Frozen):
    type: Literal["escalation.customer_responded"] = "escalation.customer_responded"
    accepted: bool
    comment: ShortText | None = None


class Resolved(Frozen):
    type: Literal["escalation.resolved"] = "escalation.resolved"
    root_cause: RootCause
    compensation_paid: Money = Decimal(0)


class FollowUpDue(Frozen):
    type: Literal["escalation.follow_up_due"] = "escalation.follow_up_due"
    due_at: AwareDatetime
    detected_at: AwareDatetime


class FollowUpCompleted(Frozen):
    type: Literal["escalation.follow_up_completed"] = "escalation.follow_up_completed"
    satisfaction: Annotated[int, Field(ge=1, le=5)]
    comment: ShortText | None = None


class Closed(Frozen):
    type: Literal["escalation.closed"] = "escalation.closed"
    note: ShortText | None = None


class Reopened(Frozen):
    type: Literal["escalation.reopened"] = "escalation.reopened"
    reason: ShortText


class Withdrawn(Frozen):
    type: Literal["escalation.withdrawn"] = "escalation.withdrawn"
    reason: WithdrawReason
    note: ShortText | None = None
    # Why a resolved case was withdrawn all the same (a manager's override); None before resolution.
    override_reason: ShortText | None = None


class FactsCorrected(Frozen):
    """Facts of the case corrected after opening; each ``from_*`` is what it replaced (None: unchanged)."""

    type: Literal["escalation.facts_corrected"] = "escalation.facts_corrected"
    reason: ShortText
    category: Category | None = None
    from_category: Category | None = None
    severity: Severity | None = None
    from_severity: Severity | None = None
    title: ShortText | None = None
    from_title: str | None = None
    description: LongText | None = None


class SignalAttached(Frozen):
    type: Literal["escalation.signal_attached"] = "escalation.signal_attached"
    signal: EarlyWarningSignal


EventData = Annotated[
    Opened
    | PriorityChanged
    | PolicyChanged
    | OwnerAssigned
    | Acknowledged
    | NoteAdded
    | EscalationRequested
    | EscalationDeclined
    | Escalated
    | DeEscalated
    | Paused
    | Resumed
    | DeadlineWarning
    | DeadlineBreached
    | ResolutionProposed
    | CompensationDecided
    | SignedOff
    | CustomerResponded
    | Resolved
    | FollowUpDue
    | FollowUpCompleted
    | Closed
    | Reopened
    | Withdrawn
    | SignalAttached
    | FactsCorrected
    | PauseExpiring,
    Field(discriminator="type"),
]

EVENT_TYPES: tuple[str, ...] = tuple(str(cls.model_fields["type"].default) for cls in get_args(get_args(EventData)[0]))


# --------------------------------------------------------------------------- envelope


class NewEvent(Frozen):
    """An event decided by the domain, not yet stored.

    ``command_key`` is the idempotency key of the command that produced it (None
    for events the system produced from a timer); it is what makes commands
    idempotent across continue-as-new, because the key lives in the record.
    ``command_digest`` tells a redelivery (same key, same digest) from a key
    reused for another request (same key, another digest).
    """

    event_id: UUID
    stream_id: Identifier
    version: Annotated[int, Field(ge=1)]
    occurred_at: AwareDatetime
    actor: Actor
    command_key: Identifier | None = None
    # sha256 of what the command asked (``Command.digest``); absent on events stored before it was recorded.
    command_digest: CommandDigest | None = None
    correlation_id: Identifier | None = None
    causation_id: Identifier | None = None
    data: EventData

    @property
    def type(self) -> str:
        return self.data.type


class RecordedEvent(NewEvent):
    """An event as stored: ``hash = sha256(prev_hash || body)`` per stream."""

    position: int
    recorded_at: datetime
    prev_hash: str
    hash: str


CASE_STREAM_PREFIX = "escalation-"


def stream_id_for(case_id: str) -> str:
    return f"{CASE_STREAM_PREFIX}{case_id}"


# uuid5 namespace of case event ids (a fixed, arbitrary UUID: changing it changes every id).
CASE_EVENT_ID_NAMESPACE = UUID("6f0c7d1e-3c55-4d0e-9a57-2f4b1c8e9d21")


def case_event_id(stream_id: str, version: int) -> UUID:
    """The id of the event at ``version`` of a case stream.

    Derived from the position in the stream rather than drawn at random, so
    every execution path of a workflow, including a task that Temporal later
    discards and its replay, names the event at a version alike. A re-append at
    a taken version is then recognised as such and answered with what is stored
    (the record), never mistaken for a new event that reuses an old id.
    """
    return uuid5(CASE_EVENT_ID_NAMESPACE, f"{stream_id}#{version}")


def case_id_of(stream_id: str) -> str:
    """The case id of a case stream (the inverse of ``stream_id_for``)."""
    return stream_id.removeprefix(CASE_STREAM_PREFIX)
