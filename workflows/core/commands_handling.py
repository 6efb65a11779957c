"""Working a case: ownership, acknowledgement, notes and signals, the clock, the priority."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from workflows.core.command_registry import Command, no_guard, register, require_active
from workflows.core.errors import DomainError
from workflows.core.events import (
    Acknowledged,
    EarlyWarningSignal,
    EventData,
    FactsCorrected,
    Identifier,
    LongText,
    NoteAdded,
    OwnerAssigned,
    Paused,
    PriorityChanged,
    Resumed,
    ShortText,
    SignalAttached,
)
from workflows.core.permissions import SENIOR, STAFF, STAFF_AND_SERVICE
from workflows.core.state import EscalationState, Status
from workflows.core.vocabulary import Category, NoteVisibility, PauseReason, Priority, Severity


class AssignOwner(Command):
    """Give the case an owner, and with ``team`` move it to another team (a hand-off)."""

    command: Literal["assign"] = "assign"
    owner: Identifier
    reason: ShortText | None = None
    team: Identifier | None = None


def _guard_assign(s: EscalationState, now: datetime) -> None:
    require_active(s, "assign.case_not_active")


@register(
    AssignOwner,
    roles=STAFF,
    route="assign",
    guard=_guard_assign,
    recorded_by=OwnerAssigned,
    replay=lambda d, f: AssignOwner(**f, owner=d.owner, reason=d.reason, team=d.team),
)
def _assign(s: EscalationState, c: AssignOwner, now: datetime) -> list[EventData]:
    moves_team = c.team is not None and c.team != s.team
    if s.owner == c.owner and not moves_team:
        raise DomainError("assign.already_owner", f"{c.owner} already owns case {s.case_id}")
    # Every reassignment is a hand-off: to another person, or to another team.
    handoff = s.owner is not None or (moves_team and s.team is not None)
    return [
        OwnerAssigned(
            owner=c.owner,
            previous_owner=s.owner,
            is_handoff=handoff,
            reason=c.reason,
            team=c.team if moves_team else None,
            from_team=s.team if moves_team else None,
        )
    ]


class Acknowledge(Command):
    command: Literal["acknowledge"] = "acknowledge"


def _guard_acknowledge(s: EscalationState, now: datetime) -> None:
    if s.status != Status.OPEN:
        raise DomainError(
            "acknowledge.not_open", f"case {s.case_id} is {s.status.value}; only an open case is acknowledged"
        )


@register(
    Acknowledge,
    roles=STAFF,
    route="acknowledge",
    guard=_guard_acknowledge,
    recorded_by=Acknowledged,
    replay=lambda d, f: Acknowledge(**f),
)
def _acknowledge(s: EscalationState, c: Acknowledge, now: datetime) -> list[EventData]:
    return [Acknowledged(by=c.actor.id, level=s.level)]


class AddNote(Command):
    command: Literal["add_note"] = "add_note"
    visibility: NoteVisibility = NoteVisibility.INTERNAL
    text: LongText


@register(
    AddNote,
    roles=STAFF_AND_SERVICE,
    route="notes",
    guard=no_guard,
    recorded_by=NoteAdded,
    replay=lambda d, f: AddNote(**f, visibility=d.visibility, text=d.text),
    signal=True,
)
def _add_note(s: EscalationState, c: AddNote, now: datetime) -> list[EventData]:
    return [NoteAdded(visibility=c.visibility, text=c.text)]


class AttachSignal(Command):
    command: Literal["attach_signal"] = "attach_signal"
    signal: EarlyWarningSignal


@register(
    AttachSignal,
    roles=STAFF_AND_SERVICE,
    route="signals",
    guard=no_guard,
    recorded_by=SignalAttached,
    replay=lambda d, f: AttachSignal(**f, signal=d.signal),
    signal=True,
)
def _attach_signal(s: EscalationState, c: AttachSignal, now: datetime) -> list[EventData]:
    return [SignalAttached(signal=c.signal)]


class Pause(Command):
    command: Literal["pause"] = "pause"
    reason: PauseReason
    note: ShortText | None = None


def _guard_pause(s: EscalationState, now: datetime) -> None:
    require_active(s, "pause.case_not_active")
    if s.status == Status.OPEN and not s.policy.pauses.before_acknowledge:
        raise DomainError("pause.not_acknowledged", "the policy allows a pause only after the case is acknowledged")
    if s.paused is not None:
        raise DomainError("pause.already_paused", f"case {s.case_id} is already paused ({s.paused.reason.value})")


@register(
    Pause,
    roles=STAFF,
    route="pause",
    guard=_guard_pause,
    recorded_by=Paused,
    replay=lambda d, f: Pause(**f, reason=d.reason, note=d.note),
)
def _pause(s: EscalationState, c: Pause, now: datetime) -> list[EventData]:
    return [Paused(reason=c.reason, note=c.note)]


class Resume(Command):
    command: Literal["resume"] = "resume"


def _guard_resume(s: EscalationState, now: datetime) -> None:
    if s.paused is None:
        raise DomainError("resume.not_paused", f"case {s.case_id} is not paused")


def resumed_now(s: EscalationState, now: datetime) -> list[EventData]:
    """The ``Resumed`` that closes the case's pause at ``now`` (none if it is not paused), so that
    paused time stays exact when another command ends the wait."""
    if s.paused is None:
        return []
    return [Resumed(paused_seconds=(now - s.paused.since).total_seconds())]


@register(
    Resume,
    roles=STAFF,
    route="resume",
    guard=_guard_resume,
    recorded_by=Resumed,
    replay=lambda d, f: Resume(**f),
)
def _resume(s: EscalationState, c: Resume, now: datetime) -> list[EventData]:
    return resumed_now(s, now)


class ChangePriority(Command):
    command: Literal["change_priority"] = "change_priority"
    to_priority: Priority
    reason: ShortText


def _guard_change_priority(s: EscalationState, now: datetime) -> None:
    require_active(s, "change_priority.case_not_active")


@register(
    ChangePriority,
    roles=SENIOR,
    route="change-priority",
    guard=_guard_change_priority,
    recorded_by=PriorityChanged,
    replay=lambda d, f: ChangePriority(**f, to_priority=d.to_priority, reason=d.reason),
)
def _change_priority(s: EscalationState, c: ChangePriority, now: datetime) -> list[EventData]:
    if c.to_priority == s.priority:
        raise DomainError("change_priority.unchanged", f"case {s.case_id} is already {s.priority.value}")
    return [PriorityChanged(from_priority=s.priority, to_priority=c.to_priority, reason=c.reason)]


class CorrectFacts(Command):
    """Correct what the case was opened with. A new severity recomputes the priority from the policy's
    matrix (recorded as a priority change with the reason), unless the priority was overridden."""

    command: Literal["correct_facts"] = "correct_facts"
    reason: ShortText
    category: Category | None = None
    severity: Severity | None = None
    title: ShortText | None = None
    description: LongText | None = None


def _guard_correct_facts(s: EscalationState, now: datetime) -> None:
    require_active(s, "correct_facts.case_not_active")


@register(
    CorrectFacts,
    roles=STAFF,
    route="correct-facts",
    guard=_guard_correct_facts,
    recorded_by=FactsCorrected,
    replay=lambda d, f: CorrectFacts(
        **f, reason=d.reason, category=d.category, severity=d.severity, title=d.title, description=d.description
    ),
)
def _correct_facts(s: EscalationState, c: CorrectFacts, now: datetime) -> list[EventData]:
    category = c.category if c.category not in (None, s.category) else None
    severity = c.severity if c.severity not in (None, s.severity) else None
    title = c.title if c.title not in (None, s.title) else None
    if category is None and severity is None and title is None and c.description is None:
        raise DomainError("correct_facts.nothing_changed", "give at least one fact that differs from the case's")
    events: list[EventData] = [
        FactsCorrected(
            reason=c.reason,
            category=category,
            from_category=s.category if category else None,
            severity=severity,
            from_severity=s.severity if severity else None,
            title=title,
            from_title=s.title if title else None,
            description=c.description,
        )
    ]
    if severity is not None and not s.priority_overridden:
        priority = s.policy.priority_for(severity, s.customer.tier, s.customer.annual_value)
        if priority != s.priority:
            reason = f"severity corrected {s.severity.value} -> {severity.value}: {c.reason}"
            events.append(PriorityChanged(from_priority=s.priority, to_priority=priority, reason=reason[:300]))
    return events
