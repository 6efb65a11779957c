"""Commands: what a person or service asks a case to do (imperative names).

Each command names its actor and carries an idempotency key; a command whose key
the case has already seen changes nothing (invariant 9). ``command`` is the
stable discriminator also used as the update name and in the permission table.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.core.canonical import canonical_json, sha256_hex
from workflows.core.events import (
    Actor,
    CaseId,
    Compensation,
    Customer,
    EarlyWarningSignal,
    Identifier,
    LongText,
    PolicyHash,
    ShortText,
)
from workflows.core.vocabulary import (
    Category,
    LifecycleStage,
    NoteVisibility,
    PauseReason,
    PolicyChangeMode,
    Priority,
    RootCause,
    Severity,
    SourceKind,
    WithdrawReason,
)


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor
    idempotency_key: Identifier
    correlation_id: Identifier | None = None

    def digest(self) -> str:
        """What the command asks (who, what, with which fields), without its idempotency key or tracing id.

        Stored in the envelope of the events the command produced: a later command with the same key and
        the same digest is a redelivery; with another digest, the key was reused for another request.
        """
        return sha256_hex(canonical_json(self.model_dump(mode="json", exclude={"idempotency_key", "correlation_id"})))


class OpenEscalation(Command):
    command: Literal["open"] = "open"
    case_id: CaseId
    customer: Customer
    category: Category
    lifecycle_stage: LifecycleStage
    severity: Severity
    title: ShortText
    description: LongText
    source: SourceKind
    priority_override: Priority | None = None
    override_reason: ShortText | None = None
    signal: EarlyWarningSignal | None = None


class AssignOwner(Command):
    command: Literal["assign"] = "assign"
    owner: Identifier
    reason: ShortText | None = None


class Acknowledge(Command):
    command: Literal["acknowledge"] = "acknowledge"


class AddNote(Command):
    command: Literal["add_note"] = "add_note"
    visibility: NoteVisibility = NoteVisibility.INTERNAL
    text: LongText


class RequestEscalation(Command):
    command: Literal["request_escalation"] = "request_escalation"
    reason: ShortText
    wanted_level: Annotated[int, Field(ge=1)] | None = None


class DeclineEscalation(Command):
    command: Literal["decline_escalation"] = "decline_escalation"
    reason: ShortText


class Escalate(Command):
    command: Literal["escalate"] = "escalate"
    to_level: Annotated[int, Field(ge=1)] | None = None
    reason: ShortText | None = None


class DeEscalate(Command):
    command: Literal["de_escalate"] = "de_escalate"
    to_level: Annotated[int, Field(ge=1)] | None = None
    reason: ShortText


class Pause(Command):
    command: Literal["pause"] = "pause"
    reason: PauseReason
    note: ShortText | None = None


class Resume(Command):
    command: Literal["resume"] = "resume"


class ChangePriority(Command):
    command: Literal["change_priority"] = "change_priority"
    to_priority: Priority
    reason: ShortText


class ProposeResolution(Command):
    command: Literal["propose_resolution"] = "propose_resolution"
    summary: LongText
    root_cause: RootCause
    root_cause_text: ShortText
    compensation: Compensation | None = None


class DecideCompensation(Command):
    command: Literal["decide_compensation"] = "decide_compensation"
    approved: bool
    reason: ShortText | None = None


class SignOff(Command):
    command: Literal["sign_off"] = "sign_off"


class RecordCustomerResponse(Command):
    command: Literal["customer_response"] = "customer_response"
    accepted: bool
    comment: ShortText | None = None


class CompleteFollowUp(Command):
    command: Literal["follow_up"] = "follow_up"
    satisfaction: Annotated[int, Field(ge=1, le=5)]
    comment: ShortText | None = None


class Close(Command):
    command: Literal["close"] = "close"
    note: ShortText | None = None


class Reopen(Command):
    command: Literal["reopen"] = "reopen"
    reason: ShortText


class Withdraw(Command):
    command: Literal["withdraw"] = "withdraw"
    reason: WithdrawReason
    note: ShortText | None = None


class ChangePolicy(Command):
    """Move an open case to another policy version; ``policy`` is that version's content
    (``escalations policy show HASH``), checked against ``policy_hash``."""

    command: Literal["change_policy"] = "change_policy"
    mode: PolicyChangeMode
    policy_hash: PolicyHash
    policy: dict[str, Any]
    reason: ShortText


class AttachSignal(Command):
    command: Literal["attach_signal"] = "attach_signal"
    signal: EarlyWarningSignal


class DeadlineReached(BaseModel):
    """The workflow's timer fired: enforce whatever is due at ``now`` (system only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    command: ClassVar[str] = "deadline_reached"


CaseCommand = Annotated[
    AssignOwner
    | Acknowledge
    | AddNote
    | RequestEscalation
    | DeclineEscalation
    | Escalate
    | DeEscalate
    | Pause
    | Resume
    | ChangePriority
    | ChangePolicy
    | ProposeResolution
    | DecideCompensation
    | SignOff
    | RecordCustomerResponse
    | CompleteFollowUp
    | Close
    | Reopen
    | Withdraw
    | AttachSignal,
    Field(discriminator="command"),
]
"""Every command addressed to an existing case (everything but ``open``)."""

COMMAND_CLASSES: dict[str, type[Command]] = {
    cls.model_fields["command"].default: cls
    for cls in (OpenEscalation, *CaseCommand.__origin__.__args__)  # type: ignore[attr-defined]
}
