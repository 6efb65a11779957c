"""``evolve(state, event) -> state``: the meaning of each event, and nothing else.

Pure and total over stored events: it never refuses (events are facts; the
refusals happen in ``decide``). The deadline arithmetic lives here because a
deadline is a function of the events and the pinned policy; ``decide`` only
reads the clocks this module keeps.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from workflows.core.events import (
    NO_CALENDAR,
    SYSTEM_ACTOR,
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
    EventData,
    FactsCorrected,
    FollowUpCompleted,
    FollowUpDue,
    NewEvent,
    NoteAdded,
    Opened,
    OwnerAssigned,
    Paused,
    PauseExpiring,
    PolicyChanged,
    PriorityChanged,
    Reopened,
    ResolutionProposed,
    Resolved,
    Resumed,
    SignalAttached,
    SignedOff,
    Withdrawn,
)
from workflows.core.policy import Policy, pinned_policy
from workflows.core.state import (
    PAUSABLE,
    Clock,
    EscalationState,
    PauseInfo,
    PendingRequest,
    Proposal,
    Status,
    attach_calendars,
)
from workflows.core.vocabulary import DeadlineKind, EscalationCause, NoteVisibility, PolicyChangeMode, Priority


def fold(events: Iterable[NewEvent], state: EscalationState | None = None) -> EscalationState | None:
    for event in events:
        state = evolve(state, event)
    return state


_PROVISIONAL_ID = uuid.UUID(int=0)


def fold_provisionally(s: EscalationState, payloads: Sequence[EventData], now: datetime) -> EscalationState:
    """``s`` after payloads not yet stored, to see what they would change (ids are placeholders).

    ``decide`` uses it to look ahead (which deadlines fall due after a breach, which move under a
    new policy); the state it returns is never stored or returned to a caller.
    """
    for offset, data in enumerate(payloads, start=1):
        s = evolve(
            s,
            NewEvent(
                event_id=_PROVISIONAL_ID,
                stream_id=s.stream_id,
                version=s.version + offset,
                occurred_at=now,
                actor=SYSTEM_ACTOR,
                data=data,
            ),
        )
    return s


def evolve(state: EscalationState | None, event: NewEvent) -> EscalationState:
    data = event.data
    at = event.occurred_at
    if isinstance(data, Opened):
        if state is not None:
            raise ValueError(f"{event.stream_id} v{event.version}: opened twice")
        new = _opened(event, data)
    else:
        if state is None:
            raise ValueError(f"{event.stream_id} v{event.version}: {data.type} before escalation.opened")
        new = _apply(state, data, at)
    changes: dict[str, Any] = {"version": event.version}
    if event.command_key is not None:
        keys = dict(new.command_keys)
        keys[event.command_key] = [*keys.get(event.command_key, []), event.version]
        changes["command_keys"] = keys
        if event.command_digest is not None and new.command_digests.get(event.command_key) != event.command_digest:
            changes["command_digests"] = {**new.command_digests, event.command_key: event.command_digest}
    # Clocks made or kept by the arm run on the calendar the case's priority prescribes now.
    return attach_calendars(new.model_copy(update=changes))


def _opened(event: NewEvent, data: Opened) -> EscalationState:
    policy = pinned_policy(data.policy, data.policy_hash)
    rules = policy.rules(data.priority)
    at = event.occurred_at
    return EscalationState(
        case_id=data.case_id,
        stream_id=event.stream_id,
        version=event.version,
        policy=policy,
        policy_hash=data.policy_hash,
        policy_label=data.policy_label,
        customer=data.customer,
        category=data.category,
        lifecycle_stage=data.lifecycle_stage,
        severity=data.severity,
        priority=data.priority,
        priority_overridden=data.priority_override_reason is not None,
        title=data.title,
        source=data.source,
        requested_by=data.requested_by,
        calendar=None if data.calendar == NO_CALENDAR else data.calendar,
        team=data.route.team if data.route else None,
        owner=data.route.owner if data.route else None,
        responders=data.route.responders if data.route else [],
        opened_at=at,
        clocks={
            DeadlineKind.ACKNOWLEDGE: Clock(kind=DeadlineKind.ACKNOWLEDGE, started_at=at, length=rules.acknowledge),
            DeadlineKind.RESOLVE: Clock(kind=DeadlineKind.RESOLVE, started_at=at, length=rules.resolve),
        },
    )


def _apply(s: EscalationState, data: Any, at: datetime) -> EscalationState:  # noqa: C901 - one arm per event type
    rules = s.policy.rules(s.priority)
    match data:
        case PolicyChanged() as changed:
            return _policy_changed(s, changed, at)
        case PriorityChanged(to_priority=to):
            return s.model_copy(update={"priority": to, "clocks": _reprioritised(s, to, at)})
        case OwnerAssigned(owner=owner, is_handoff=handoff, team=team):
            return s.model_copy(update={"owner": owner, "handoffs": s.handoffs + int(handoff), "team": team or s.team})
        case Acknowledged():
            clocks = _without(s.clocks, DeadlineKind.ACKNOWLEDGE)
            if rules.update_every is not None:
                clocks[DeadlineKind.UPDATE] = Clock(kind=DeadlineKind.UPDATE, started_at=at, length=rules.update_every)
            return s.model_copy(update={"status": Status.IN_PROGRESS, "acknowledged_at": at, "clocks": clocks})
        case NoteAdded(visibility=visibility):
            if visibility == NoteVisibility.INTERNAL:
                return s
            clocks = dict(s.clocks)
            if DeadlineKind.UPDATE in clocks:
                # An update to the customer or executives satisfies the cadence: restart it.
                clocks[DeadlineKind.UPDATE] = Clock(
                    kind=DeadlineKind.UPDATE, started_at=at, length=clocks[DeadlineKind.UPDATE].length
                )
            return s.model_copy(update={"last_update_at": at, "clocks": clocks})
        case EscalationRequested(by=by, reason=reason, wanted_level=wanted):
            return s.model_copy(
                update={"pending_request": PendingRequest(by=by, reason=reason, wanted_level=wanted, at=at)}
            )
        case EscalationDeclined():
            return s.model_copy(update={"pending_request": None, "declined_requests": s.declined_requests + 1})
        case Escalated(to_level=to, cause=cause, responders=responders):
            clocks = dict(s.clocks)
            if DeadlineKind.ACKNOWLEDGE in clocks and cause != EscalationCause.BREACH:
                # Still unacknowledged: the new level gets a full acknowledge span.
                # (After a breach the breach event has already re-armed it.)
                clocks[DeadlineKind.ACKNOWLEDGE] = Clock(
                    kind=DeadlineKind.ACKNOWLEDGE, started_at=at, length=rules.acknowledge
                )
            pending = s.pending_request
            if pending is not None and to >= pending.wanted_level:
                pending = None
            return s.model_copy(
                update={
                    "level": to,
                    "max_level_reached": max(s.max_level_reached, to),
                    "escalations": s.escalations + 1,
                    "pending_request": pending,
                    "clocks": clocks,
                    "responders": responders,
                }
            )
        case DeEscalated(to_level=to, responders=responders):
            return s.model_copy(update={"level": to, "responders": responders})
        case Paused(reason=reason):
            return s.model_copy(update={"paused": PauseInfo(reason=reason, since=at)})
        case Resumed(automatic=True, paused_seconds=seconds) if s.paused is not None:
            # Resumed by the system at the pause's maximum: the pause ended then, however late it is recorded.
            return _resumed(s, s.paused.since + timedelta(seconds=seconds))
        case Resumed():
            return _resumed(s, at)
        case DeadlineWarning(kind=kind):
            clocks = dict(s.clocks)
            if kind in clocks:
                clocks[kind] = clocks[kind].model_copy(update={"warned": True})
            return s.model_copy(update={"clocks": clocks, "warnings": _count(s.warnings, kind)})
        case DeadlineBreached(kind=kind, level=level, due_at=due, next_due_at=next_due):
            clocks = _without(s.clocks, kind)
            if next_due is not None:
                repeat = kind == DeadlineKind.RESOLVE or (
                    kind == DeadlineKind.ACKNOWLEDGE and level >= s.policy.top_level
                )
                length = s.clocks[kind].elapsed(due, next_due) if kind in s.clocks else next_due - due
                clocks[kind] = Clock(kind=kind, started_at=due, length=length, repeat=repeat)
            return s.model_copy(update={"clocks": clocks, "breaches": _count(s.breaches, kind)})
        case ResolutionProposed() as proposed:
            proposal = Proposal(
                summary=proposed.summary,
                root_cause=proposed.root_cause,
                root_cause_text=proposed.root_cause_text,
                compensation=proposed.compensation,
                awaiting_compensation_approval=proposed.needs_compensation_approval,
                awaiting_sign_off=proposed.needs_sign_off,
                proposed_by=proposed.proposed_by,
            )
            return s.model_copy(update={"status": Status.RESOLUTION_PROPOSED, "proposal": proposal})
        case CompensationDecided(approved=approved):
            assert s.proposal is not None
            if approved:
                return s.model_copy(
                    update={"proposal": s.proposal.model_copy(update={"awaiting_compensation_approval": False})}
                )
            return s.model_copy(update={"status": Status.IN_PROGRESS, "proposal": None})
        case SignedOff():
            assert s.proposal is not None
            return s.model_copy(update={"proposal": s.proposal.model_copy(update={"awaiting_sign_off": False})})
        case CustomerResponded(accepted=accepted):
            if accepted:
                return s
            return s.model_copy(
                update={
                    "status": Status.IN_PROGRESS,
                    "proposal": None,
                    "customer_rejections": s.customer_rejections + 1,
                }
            )
        case Resolved(root_cause=root_cause, compensation_paid=paid):
            clocks = {
                DeadlineKind.FOLLOW_UP: Clock(
                    kind=DeadlineKind.FOLLOW_UP, started_at=at, length=rules.follow_up, repeat=True
                )
            }
            return s.model_copy(
                update={
                    "status": Status.RESOLVED,
                    "resolved_at": at,
                    "root_cause": root_cause,
                    "compensation_paid": s.compensation_paid + paid,
                    "proposal": None,
                    "pending_request": None,
                    "clocks": clocks,
                }
            )
        case FollowUpDue(due_at=due):
            return s.model_copy(update={"follow_up_due_at": due, "clocks": _without(s.clocks, DeadlineKind.FOLLOW_UP)})
        case FollowUpCompleted(satisfaction=score):
            return s.model_copy(update={"satisfaction": score})
        case Closed():
            return s.model_copy(update={"status": Status.CLOSED, "closed_at": at, "clocks": {}})
        case Reopened():
            clocks = {DeadlineKind.RESOLVE: Clock(kind=DeadlineKind.RESOLVE, started_at=at, length=rules.resolve)}
            if rules.update_every is not None:
                clocks[DeadlineKind.UPDATE] = Clock(kind=DeadlineKind.UPDATE, started_at=at, length=rules.update_every)
            return s.model_copy(
                update={
                    "status": Status.IN_PROGRESS,
                    "reopen_count": s.reopen_count + 1,
                    "resolved_at": None,
                    "closed_at": None,
                    "follow_up_due_at": None,
                    "satisfaction": None,
                    "clocks": clocks,
                }
            )
        case Withdrawn():
            return s.model_copy(
                update={
                    "status": Status.WITHDRAWN,
                    "withdrawn_at": at,
                    "clocks": {},
                    "paused": None,
                    "pending_request": None,
                }
            )
        case FactsCorrected() as corrected:
            changes = {"category": corrected.category, "severity": corrected.severity, "title": corrected.title}
            return s.model_copy(update={k: v for k, v in changes.items() if v is not None})
        case PauseExpiring():
            assert s.paused is not None
            return s.model_copy(update={"paused": s.paused.model_copy(update={"reminded": True})})
        case SignalAttached():
            return s.model_copy(update={"signals": s.signals + 1})
    raise TypeError(f"evolve has no arm for {type(data).__name__}")


def _without(clocks: dict[DeadlineKind, Clock], kind: DeadlineKind) -> dict[DeadlineKind, Clock]:
    return {k: c for k, c in clocks.items() if k != kind}


def _count(counts: dict[DeadlineKind, int], kind: DeadlineKind) -> dict[DeadlineKind, int]:
    return {**counts, kind: counts.get(kind, 0) + 1}


def _resumed(s: EscalationState, at: datetime) -> EscalationState:
    assert s.paused is not None
    since = s.paused.since
    clocks = dict(s.clocks)
    for kind in PAUSABLE:
        clock = clocks.get(kind)
        if clock is not None:
            # A clock (re)started during the pause only missed the part after its start.
            missed = clock.elapsed(max(since, clock.started_at), at)
            clocks[kind] = clock.model_copy(update={"shift": clock.shift + missed})
    paused = (at - since).total_seconds()
    return s.model_copy(update={"paused": None, "paused_seconds": s.paused_seconds + paused, "clocks": clocks})


def _reprioritised(s: EscalationState, to: Priority, at: datetime) -> dict[DeadlineKind, Clock]:
    """Clocks under the new priority's spans, measured from when each clock started."""
    rules = s.policy.rules(to)
    clocks = dict(s.clocks)
    for kind, length in ((DeadlineKind.ACKNOWLEDGE, rules.acknowledge), (DeadlineKind.RESOLVE, rules.resolve)):
        clock = clocks.get(kind)
        if clock is not None and not clock.repeat:
            clocks[kind] = clock.model_copy(update={"length": length})
    if s.status in (Status.IN_PROGRESS, Status.RESOLUTION_PROPOSED):
        if rules.update_every is None:
            clocks.pop(DeadlineKind.UPDATE, None)
        elif DeadlineKind.UPDATE in clocks:
            clocks[DeadlineKind.UPDATE] = clocks[DeadlineKind.UPDATE].model_copy(update={"length": rules.update_every})
        else:
            clocks[DeadlineKind.UPDATE] = Clock(kind=DeadlineKind.UPDATE, started_at=at, length=rules.update_every)
    return clocks


def _policy_changed(s: EscalationState, d: PolicyChanged, at: datetime) -> EscalationState:
    """The case on its new policy version (keep: unchanged). See ``PolicyChangeMode``."""
    if d.mode == PolicyChangeMode.KEEP or d.policy is None:
        return s
    policy = pinned_policy(d.policy, d.to_hash)
    clocks: dict[DeadlineKind, Clock] = {}
    for kind, clock in s.clocks.items():
        span = _span(policy, s.priority, kind, clock.repeat)
        if span is None:
            continue  # the new rules have no such clock (e.g. no update cadence)
        if d.mode == PolicyChangeMode.REBASE:
            clocks[kind] = Clock(kind=kind, started_at=at, length=span, repeat=clock.repeat)
        else:  # retroactive: the same start and paused time, the new span
            clocks[kind] = clock.model_copy(update={"length": span})
    return s.model_copy(
        update={"policy": policy, "policy_hash": d.to_hash, "policy_label": d.policy_label, "clocks": clocks}
    )


def _span(policy: Policy, priority: Priority, kind: DeadlineKind, repeat: bool) -> timedelta | None:
    """How long a clock of ``kind`` runs under ``policy`` (a repeat at the top runs the repeat interval)."""
    rules = policy.rules(priority)
    if repeat and kind in (DeadlineKind.ACKNOWLEDGE, DeadlineKind.RESOLVE):
        return policy.escalation.repeat_at_top
    return {
        DeadlineKind.ACKNOWLEDGE: rules.acknowledge,
        DeadlineKind.RESOLVE: rules.resolve,
        DeadlineKind.UPDATE: rules.update_every,
        DeadlineKind.FOLLOW_UP: rules.follow_up,
    }[kind]
