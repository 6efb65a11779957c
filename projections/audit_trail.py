"""Audit trail: every event of a case as a line a person reads (who, what, when, details)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from projections.runner import Projection
from workflows.core.events import (
    Acknowledged,
    Closed,
    CompensationDecided,
    CustomerResponded,
    DeadlineBreached,
    DeadlineWarning,
    DeEscalated,
    Escalated,
    EscalationDeclined,
    EscalationRequested,
    FactsCorrected,
    FollowUpCompleted,
    FollowUpDue,
    NoteAdded,
    Opened,
    OwnerAssigned,
    Paused,
    PauseExpiring,
    PolicyChanged,
    PriorityChanged,
    RecordedEvent,
    Reopened,
    ResolutionProposed,
    Resolved,
    Responder,
    Resumed,
    Route,
    SignalAttached,
    SignedOff,
    Withdrawn,
    case_id_of,
)


def _t(value) -> str:  # noqa: ANN001 - datetime
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _responder_words(responders: list[Responder]) -> str:
    if not responders:
        return ""
    return "; responders " + ", ".join(f"{r.name or r.id} ({r.id}, {r.via})" for r in responders)


def _route_words(route: Route) -> str:
    owner = f"owner {route.owner}" if route.owner else "no owner (team queue)"
    return (
        f"; routed to team {route.team} by rule {route.rule!r} ({route.strategy.value}), {owner}: {route.why}; "
        f"{len(route.candidates)} candidates considered" + _responder_words(route.responders)
    )


def describe(event: RecordedEvent) -> tuple[str, str]:
    """(action, details) in plain words for one event."""
    match event.data:
        case Opened() as d:
            return "opened the case", (
                f"{d.title!r} for {d.customer.name} ({d.customer.tier.value}); {d.severity.value}, {d.category.value}, "
                f"priority {d.priority.value}"
                + (f" (override: {d.priority_override_reason})" if d.priority_override_reason else "")
                + f"; source {d.source.value}; policy {d.policy_label!r} {d.policy_hash[:12]}"
                + (_route_words(d.route) if d.route else "")
            )
        case PolicyChanged() as d:
            moves = (
                "; ".join(f"{m.kind.value} {_when(m.from_due)} -> {_when(m.to_due)}" for m in d.moved)
                or "no deadline moved"
            )
            return f"changed the policy ({d.mode.value})", (
                f"{d.from_hash[:12]} -> {d.to_hash[:12]} {d.policy_label!r}: {d.reason}; {moves}"
            )
        case PriorityChanged() as d:
            return "changed the priority", f"{d.from_priority.value} -> {d.to_priority.value}: {d.reason}"
        case OwnerAssigned() as d:
            handoff = f" (hand-off from {d.previous_owner})" if d.is_handoff else ""
            team = f", team {d.from_team} -> {d.team}" if d.team and d.team != d.from_team else ""
            return "assigned the owner", f"{d.owner}{handoff}{team}" + (f": {d.reason}" if d.reason else "")
        case Acknowledged() as d:
            return "acknowledged the case", f"at level {d.level}"
        case NoteAdded() as d:
            return {
                "internal": "added an internal note",
                "customer_update": "sent a customer update",
                "executive_update": "sent an executive update",
            }[d.visibility.value], d.text
        case EscalationRequested() as d:
            return "requested escalation", f"to level {d.wanted_level}: {d.reason}"
        case EscalationDeclined() as d:
            return "declined the escalation request", d.reason
        case Escalated() as d:
            reason = f": {d.reason}" if d.reason else ""
            return "escalated the case", (
                f"level {d.from_level} -> {d.to_level} ({d.cause.value}){reason}{_responder_words(d.responders)}"
            )
        case DeEscalated() as d:
            return "de-escalated the case", (
                f"level {d.from_level} -> {d.to_level}: {d.reason}{_responder_words(d.responders)}"
            )
        case Paused() as d:
            return "paused the clock", d.reason.value.replace("_", " ") + (f": {d.note}" if d.note else "")
        case Resumed() as d:
            automatic = " (the pause reached its maximum)" if d.automatic else ""
            return "resumed the clock", f"after {d.paused_seconds:.0f} s paused{automatic}"
        case DeadlineWarning() as d:
            return f"warned: {d.kind.value} deadline near", f"due {_t(d.due_at)} at level {d.level}"
        case DeadlineBreached() as d:
            late = (d.detected_at - d.due_at).total_seconds()
            return (
                f"recorded a missed {d.kind.value} deadline",
                f"due {_t(d.due_at)}, detected {late:.3f} s later at level {d.level}",
            )
        case ResolutionProposed() as d:
            comp = (
                f"; compensation {d.compensation.kind.value} {d.compensation.amount} {d.compensation.currency}"
                if d.compensation
                else ""
            )
            return "proposed a resolution", f"{d.summary} (root cause {d.root_cause.value}: {d.root_cause_text}){comp}"
        case CompensationDecided() as d:
            return ("approved" if d.approved else "rejected") + " the compensation", f"{d.amount}" + (
                f": {d.reason}" if d.reason else ""
            )
        case SignedOff():
            return "signed off the resolution", ""
        case CustomerResponded() as d:
            return ("customer accepted" if d.accepted else "customer rejected") + " the resolution", d.comment or ""
        case Resolved() as d:
            return "resolved the case", f"root cause {d.root_cause.value}; compensation paid {d.compensation_paid}"
        case FollowUpDue() as d:
            return "follow-up became due", f"due {_t(d.due_at)}"
        case FollowUpCompleted() as d:
            return "completed the follow-up", f"satisfaction {d.satisfaction}/5" + (
                f": {d.comment}" if d.comment else ""
            )
        case Closed() as d:
            return "closed the case", d.note or ""
        case Reopened() as d:
            return "reopened the case", d.reason
        case Withdrawn() as d:
            override = f" (after resolution, overriding: {d.override_reason})" if d.override_reason else ""
            return "withdrew the case", d.reason.value.replace("_", " ") + (f": {d.note}" if d.note else "") + override
        case FactsCorrected() as d:
            changed = [
                f"{name} {old} -> {new}"
                for name, old, new in (
                    ("category", d.from_category, d.category),
                    ("severity", d.from_severity, d.severity),
                    ("title", repr(d.from_title), repr(d.title) if d.title else None),
                )
                if new is not None
            ] + (["description"] if d.description else [])
            return "corrected the case's facts", f"{', '.join(changed)}: {d.reason}"
        case PauseExpiring() as d:
            return "warned: the pause ends soon", f"{d.reason.value.replace('_', ' ')}: resumes at {_t(d.ends_at)}"
        case SignalAttached() as d:
            return "attached an early-warning signal", f"{d.signal.kind.value} = {d.signal.value}"
    return event.type, ""


class AuditTrailProjection(Projection):
    name = "audit_trail"
    tables = ("audit_trail",)

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        rows = []
        for e in events:
            action, details = describe(e)
            rows.append(
                (
                    e.position,
                    case_id_of(e.stream_id),
                    e.version,
                    e.event_id,
                    e.type,
                    e.occurred_at,
                    e.recorded_at,
                    e.actor.id,
                    e.actor.role.value,
                    action,
                    details,
                )
            )
        await conn.executemany(
            f"INSERT INTO {self.t['audit_trail']} (position, case_id, version, event_id, event_type, occurred_at, "
            f"recorded_at, actor_id, actor_role, action, details) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) "
            f"ON CONFLICT (position) DO NOTHING",
            rows,
        )


def _when(instant: datetime | None) -> str:
    return instant.isoformat() if instant is not None else "none"
