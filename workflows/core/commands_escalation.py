"""Moving a case through the escalation matrix by hand: requests, declines, escalations, de-escalations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from workflows.core.command_registry import Command, check_level_in_range, register, require_active, require_below_top
from workflows.core.errors import DomainError
from workflows.core.events import (
    DeEscalated,
    Escalated,
    EscalationDeclined,
    EscalationRequested,
    EventData,
    ShortText,
)
from workflows.core.permissions import SENIOR, STAFF, STAFF_AND_SERVICE
from workflows.core.state import EscalationState
from workflows.core.vocabulary import EscalationCause


class RequestEscalation(Command):
    command: Literal["request_escalation"] = "request_escalation"
    reason: ShortText
    wanted_level: Annotated[int, Field(ge=1)] | None = None


def _guard_request_escalation(s: EscalationState, now: datetime) -> None:
    require_active(s, "request_escalation.case_not_active")
    if s.pending_request is not None:
        raise DomainError(
            "request_escalation.already_pending",
            f"a request to reach level {s.pending_request.wanted_level} is already pending; decide it first",
        )
    require_below_top(s, "request_escalation")


@register(
    RequestEscalation,
    roles=STAFF_AND_SERVICE,
    route="request-escalation",
    guard=_guard_request_escalation,
    recorded_by=EscalationRequested,
    replay=lambda d, f: RequestEscalation(**f, reason=d.reason, wanted_level=d.wanted_level),
)
def _request_escalation(s: EscalationState, c: RequestEscalation, now: datetime) -> list[EventData]:
    wanted = c.wanted_level or s.level + 1
    check_level_in_range(s, wanted, "request_escalation")
    return [EscalationRequested(by=c.actor.id, reason=c.reason, wanted_level=wanted)]


class DeclineEscalation(Command):
    command: Literal["decline_escalation"] = "decline_escalation"
    reason: ShortText


def _guard_decline_escalation(s: EscalationState, now: datetime) -> None:
    if s.pending_request is None:
        raise DomainError("decline_escalation.nothing_pending", "there is no pending escalation request to decline")


@register(
    DeclineEscalation,
    roles=SENIOR,
    route="decline-escalation",
    guard=_guard_decline_escalation,
    recorded_by=EscalationDeclined,
    replay=lambda d, f: DeclineEscalation(**f, reason=d.reason),
)
def _decline_escalation(s: EscalationState, c: DeclineEscalation, now: datetime) -> list[EventData]:
    return [EscalationDeclined(by=c.actor.id, reason=c.reason)]


class Escalate(Command):
    command: Literal["escalate"] = "escalate"
    to_level: Annotated[int, Field(ge=1)] | None = None
    reason: ShortText | None = None


def _guard_escalate(s: EscalationState, now: datetime) -> None:
    require_active(s, "escalate.case_not_active")
    require_below_top(s, "escalate")


def _replay_escalate(d: Escalated, fields: dict[str, Any]) -> Escalate | None:
    # A breach's escalation is the system's own: the shadow run fires it from the deadline.
    return None if d.cause == EscalationCause.BREACH else Escalate(**fields, to_level=d.to_level, reason=d.reason)


@register(
    Escalate,
    roles=STAFF,
    route="escalate",
    guard=_guard_escalate,
    recorded_by=Escalated,
    replay=_replay_escalate,
)
def _escalate(s: EscalationState, c: Escalate, now: datetime) -> list[EventData]:
    to = c.to_level or s.level + 1
    check_level_in_range(s, to, "escalate")
    cause = EscalationCause.REQUEST if s.pending_request is not None else EscalationCause.MANUAL
    return [Escalated(from_level=s.level, to_level=to, cause=cause, reason=c.reason)]


class DeEscalate(Command):
    command: Literal["de_escalate"] = "de_escalate"
    to_level: Annotated[int, Field(ge=1)] | None = None
    reason: ShortText


def _guard_de_escalate(s: EscalationState, now: datetime) -> None:
    require_active(s, "de_escalate.case_not_active")
    if s.level <= 1:
        raise DomainError("de_escalate.already_at_bottom", f"case {s.case_id} is at level 1")


@register(
    DeEscalate,
    roles=SENIOR,
    route="de-escalate",
    guard=_guard_de_escalate,
    recorded_by=DeEscalated,
    replay=lambda d, f: DeEscalate(**f, to_level=d.to_level, reason=d.reason),
)
def _de_escalate(s: EscalationState, c: DeEscalate, now: datetime) -> list[EventData]:
    to = c.to_level or s.level - 1
    if not 1 <= to < s.level:
        raise DomainError("de_escalate.level_out_of_range", f"level must be below {s.level} and at least 1, got {to}")
    return [DeEscalated(from_level=s.level, to_level=to, reason=c.reason)]
