"""``decide(state, command, now) -> events``: every business rule, and no I/O.

Contract:
* Returns the event payloads the command produces, in order; the caller wraps
  them in envelopes, stores them, then folds them with ``evolve``.
* Refuses with ``DomainError`` naming the rule; a refusal produces no events
  (invariant 8). The actor's role is checked first (``permission.<command>``).
* Never reads a clock: ``now`` is passed in, so the same inputs always give the
  same events (the workflow passes ``workflow.now()``).
* ``DeadlineReached`` enforces everything due at ``now``, oldest first, so
  deadlines that fell while no worker ran are each enforced once, in order,
  with their true ``due_at``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ValidationError

from workflows.core.commands import (
    Acknowledge,
    AddNote,
    AssignOwner,
    AttachSignal,
    ChangePolicy,
    ChangePriority,
    Close,
    Command,
    CompleteFollowUp,
    DeadlineReached,
    DecideCompensation,
    DeclineEscalation,
    DeEscalate,
    Escalate,
    OpenEscalation,
    Pause,
    ProposeResolution,
    RecordCustomerResponse,
    Reopen,
    RequestEscalation,
    Resume,
    SignOff,
    Withdraw,
)
from workflows.core.errors import DomainError
from workflows.core.events import (
    NO_CALENDAR,
    SYSTEM_ACTOR,
    Acknowledged,
    Actor,
    Closed,
    CompensationDecided,
    CustomerResponded,
    DeadlineBreached,
    DeadlineMove,
    DeadlineWarning,
    DeEscalated,
    Escalated,
    EscalationDeclined,
    EscalationRequested,
    EventData,
    FollowUpCompleted,
    FollowUpDue,
    NewEvent,
    NoteAdded,
    Opened,
    OwnerAssigned,
    Paused,
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
from workflows.core.evolve import evolve
from workflows.core.permissions import PERMISSIONS
from workflows.core.policy import Policy
from workflows.core.state import ACTIVE, EscalationState, Status
from workflows.core.vocabulary import DeadlineKind, EscalationCause, PolicyChangeMode, Role, SourceKind

# A case cannot legitimately owe more enforcements than this at one instant
# (a year-long outage at a one-hour repeat interval is ~9,000); the bound keeps
# a corrupt clock from looping forever inside a workflow task.
MAX_ENFORCEMENTS_PER_TICK = 10_000


def authorize(actor: Actor, command_name: str) -> None:
    allowed = PERMISSIONS.get(command_name, frozenset())
    if actor.role not in allowed:
        roles = ", ".join(sorted(r.value for r in allowed)) or "nobody"
        raise DomainError(
            f"permission.{command_name}", f"role {actor.role.value!r} may not {command_name}; allowed: {roles}"
        )


def decide_open(command: OpenEscalation, policy: Policy) -> list[EventData]:
    authorize(command.actor, "open")
    if (command.priority_override is None) != (command.override_reason is None):
        raise DomainError("open.override_needs_reason", "a priority override needs an override_reason, and vice versa")
    if command.source == SourceKind.EARLY_WARNING and command.signal is None:
        raise DomainError("open.early_warning_needs_signal", "an early-warning escalation must carry its signal")
    priority = command.priority_override or policy.priority_for(command.severity, command.customer.tier)
    wanted = command.customer.calendar
    if wanted is not None and wanted not in policy.calendars:
        raise DomainError(
            "open.unknown_calendar",
            f"customer calendar {wanted!r} is not one the policy defines ({', '.join(sorted(policy.calendars)) or 'none'})",
        )
    calendar = policy.calendar_name_for(wanted)
    return [
        Opened(
            case_id=command.case_id,
            customer=command.customer,
            category=command.category,
            lifecycle_stage=command.lifecycle_stage,
            severity=command.severity,
            priority=priority,
            priority_override_reason=command.override_reason,
            title=command.title,
            description=command.description,
            source=command.source,
            requested_by=command.actor.id,
            signal=command.signal,
            policy_label=policy.label,
            policy_hash=policy.content_hash(),
            policy=policy.content(),
            calendar=calendar or NO_CALENDAR,
        )
    ]


def decide(state: EscalationState, command: Command | DeadlineReached, now: datetime) -> list[EventData]:
    """The events ``command`` produces against ``state`` at ``now`` (see module doc)."""
    if isinstance(command, DeadlineReached):
        return _enforce_deadlines(state, now)
    name = command.command  # type: ignore[attr-defined]
    authorize(command.actor, name)
    _check_case_accepts(state, name)
    _GUARDS[name](state, now)
    return _HANDLERS[type(command)](state, command, now)


def _check_case_accepts(state: EscalationState, name: str) -> None:
    if state.status == Status.WITHDRAWN:
        raise DomainError("case.withdrawn", f"case {state.case_id} was withdrawn and accepts no commands")
    if state.status == Status.CLOSED and name != "reopen":
        raise DomainError("case.closed", f"case {state.case_id} is closed; only reopen (within the window) is accepted")


def available_commands(state: EscalationState, role: Role, now: datetime) -> list[str]:
    """The commands ``role`` may run on this case at ``now``, by the same rules ``decide`` applies.

    A listed command can still be refused for what its fields say (an owner who
    already owns the case, a level out of range); an unlisted one is always refused.
    """
    allowed = []
    for name, guard in _GUARDS.items():
        if role not in PERMISSIONS.get(name, frozenset()):
            continue
        try:
            _check_case_accepts(state, name)
            guard(state, now)
        except DomainError:
            continue
        allowed.append(name)
    return allowed


# ------------------------------------------------------------------ command handlers


def _require_active(s: EscalationState, rule: str) -> None:
    if s.status not in ACTIVE:
        raise DomainError(rule, f"case {s.case_id} is {s.status.value}; this needs an open case")


# Guards: the rules that depend on the case alone, not on the command's fields.
# Each handler runs its guard first; ``available_commands`` runs them all to
# tell a caller (the console) what a role may do now, with the same rules.


def _guard_assign(s: EscalationState, now: datetime) -> None:
    _require_active(s, "assign.case_not_active")


def _guard_acknowledge(s: EscalationState, now: datetime) -> None:
    if s.status != Status.OPEN:
        raise DomainError(
            "acknowledge.not_open", f"case {s.case_id} is {s.status.value}; only an open case is acknowledged"
        )


def _guard_request_escalation(s: EscalationState, now: datetime) -> None:
    _require_active(s, "request_escalation.case_not_active")
    if s.pending_request is not None:
        raise DomainError(
            "request_escalation.already_pending",
            f"a request to reach level {s.pending_request.wanted_level} is already pending; decide it first",
        )
    _require_below_top(s, "request_escalation")


def _guard_decline_escalation(s: EscalationState, now: datetime) -> None:
    if s.pending_request is None:
        raise DomainError("decline_escalation.nothing_pending", "there is no pending escalation request to decline")


def _require_below_top(s: EscalationState, command: str) -> None:
    if s.level >= s.policy.top_level:
        raise DomainError(
            f"{command}.already_at_top", f"case {s.case_id} is already at the top level {s.policy.top_level}"
        )


def _guard_escalate(s: EscalationState, now: datetime) -> None:
    _require_active(s, "escalate.case_not_active")
    _require_below_top(s, "escalate")


def _guard_de_escalate(s: EscalationState, now: datetime) -> None:
    _require_active(s, "de_escalate.case_not_active")
    if s.level <= 1:
        raise DomainError("de_escalate.already_at_bottom", f"case {s.case_id} is at level 1")


def _guard_pause(s: EscalationState, now: datetime) -> None:
    _require_active(s, "pause.case_not_active")
    if s.paused is not None:
        raise DomainError("pause.already_paused", f"case {s.case_id} is already paused ({s.paused.reason.value})")


def _guard_resume(s: EscalationState, now: datetime) -> None:
    if s.paused is None:
        raise DomainError("resume.not_paused", f"case {s.case_id} is not paused")


def _guard_change_priority(s: EscalationState, now: datetime) -> None:
    _require_active(s, "change_priority.case_not_active")


def _guard_change_policy(s: EscalationState, now: datetime) -> None:
    _require_active(s, "change_policy.case_not_active")


def _guard_propose_resolution(s: EscalationState, now: datetime) -> None:
    if s.status == Status.OPEN:
        raise DomainError("propose_resolution.not_acknowledged", "acknowledge the case before proposing a resolution")
    if s.status != Status.IN_PROGRESS:
        raise DomainError(
            "propose_resolution.not_in_progress",
            f"case {s.case_id} is {s.status.value}; a proposal needs work in progress",
        )


def _guard_decide_compensation(s: EscalationState, now: datetime) -> None:
    if s.proposal is None or not s.proposal.awaiting_compensation_approval:
        raise DomainError("decide_compensation.nothing_awaiting", "no proposed compensation is awaiting approval")


def _guard_sign_off(s: EscalationState, now: datetime) -> None:
    if s.proposal is None or not s.proposal.awaiting_sign_off:
        raise DomainError("sign_off.nothing_awaiting", "no proposed resolution is awaiting management sign-off")


def _guard_customer_response(s: EscalationState, now: datetime) -> None:
    if s.status != Status.RESOLUTION_PROPOSED or s.proposal is None:
        raise DomainError("customer_response.no_proposal", "there is no proposed resolution for the customer to answer")
    if s.proposal.awaiting_compensation_approval:
        raise DomainError(
            "customer_response.awaiting_compensation_approval", "the proposed compensation must be approved first"
        )
    if s.proposal.awaiting_sign_off:
        raise DomainError("customer_response.awaiting_sign_off", "the proposal needs management sign-off first")


def _guard_follow_up(s: EscalationState, now: datetime) -> None:
    if s.status != Status.RESOLVED:
        raise DomainError(
            "follow_up.not_resolved", f"case {s.case_id} is {s.status.value}; follow-up comes after resolution"
        )
    if s.follow_up_due_at is None:
        due = s.clocks[DeadlineKind.FOLLOW_UP].due_at if DeadlineKind.FOLLOW_UP in s.clocks else None
        raise DomainError("follow_up.not_yet_due", f"the follow-up is due at {due.isoformat() if due else 'unknown'}")
    if s.satisfaction is not None:
        raise DomainError("follow_up.already_done", f"the follow-up was recorded (satisfaction {s.satisfaction})")


def _guard_close(s: EscalationState, now: datetime) -> None:
    if s.status != Status.RESOLVED:
        raise DomainError("close.not_resolved", f"case {s.case_id} is {s.status.value}; only a resolved case is closed")


def _guard_reopen(s: EscalationState, now: datetime) -> None:
    if s.status not in (Status.RESOLVED, Status.CLOSED) or s.resolved_at is None:
        raise DomainError(
            "reopen.not_resolved", f"case {s.case_id} is {s.status.value}; only a resolved or closed case is reopened"
        )
    until = s.resolved_at + s.policy.reopen_window
    if now >= until:
        raise DomainError("reopen.window_closed", f"the reopen window ended at {until.isoformat()}")


def _no_guard(s: EscalationState, now: datetime) -> None:
    return None


# ------------------------------------------------------------------ command handlers (after their guard)


def _assign(s: EscalationState, c: AssignOwner, now: datetime) -> list[EventData]:
    if s.owner == c.owner:
        raise DomainError("assign.already_owner", f"{c.owner} already owns case {s.case_id}")
    return [OwnerAssigned(owner=c.owner, previous_owner=s.owner, is_handoff=s.owner is not None, reason=c.reason)]


def _acknowledge(s: EscalationState, c: Acknowledge, now: datetime) -> list[EventData]:
    return [Acknowledged(by=c.actor.id, level=s.level)]


def _add_note(s: EscalationState, c: AddNote, now: datetime) -> list[EventData]:
    return [NoteAdded(visibility=c.visibility, text=c.text)]


def _request_escalation(s: EscalationState, c: RequestEscalation, now: datetime) -> list[EventData]:
    wanted = c.wanted_level or s.level + 1
    _check_level_in_range(s, wanted, "request_escalation")
    return [EscalationRequested(by=c.actor.id, reason=c.reason, wanted_level=wanted)]


def _decline_escalation(s: EscalationState, c: DeclineEscalation, now: datetime) -> list[EventData]:
    return [EscalationDeclined(by=c.actor.id, reason=c.reason)]


def _check_level_in_range(s: EscalationState, wanted: int, command: str) -> None:
    top = s.policy.top_level
    if not s.level < wanted <= top:
        raise DomainError(
            f"{command}.level_out_of_range", f"level must be above {s.level} and at most {top}, got {wanted}"
        )


def _escalate(s: EscalationState, c: Escalate, now: datetime) -> list[EventData]:
    to = c.to_level or s.level + 1
    _check_level_in_range(s, to, "escalate")
    cause = EscalationCause.REQUEST if s.pending_request is not None else EscalationCause.MANUAL
    return [Escalated(from_level=s.level, to_level=to, cause=cause, reason=c.reason)]


def _de_escalate(s: EscalationState, c: DeEscalate, now: datetime) -> list[EventData]:
    to = c.to_level or s.level - 1
    if not 1 <= to < s.level:
        raise DomainError("de_escalate.level_out_of_range", f"level must be below {s.level} and at least 1, got {to}")
    return [DeEscalated(from_level=s.level, to_level=to, reason=c.reason)]


def _pause(s: EscalationState, c: Pause, now: datetime) -> list[EventData]:
    return [Paused(reason=c.reason, note=c.note)]


def _resume(s: EscalationState, c: Resume, now: datetime) -> list[EventData]:
    assert s.paused is not None  # the guard refused otherwise
    return [Resumed(paused_seconds=(now - s.paused.since).total_seconds())]


def _change_priority(s: EscalationState, c: ChangePriority, now: datetime) -> list[EventData]:
    if c.to_priority == s.priority:
        raise DomainError("change_priority.unchanged", f"case {s.case_id} is already {s.priority.value}")
    return [PriorityChanged(from_priority=s.priority, to_priority=c.to_priority, reason=c.reason)]


def _change_policy(s: EscalationState, c: ChangePolicy, now: datetime) -> list[EventData]:
    try:
        policy = Policy.model_validate(c.policy)
    except ValidationError as exc:
        raise DomainError("change_policy.invalid_policy", f"the policy content is not a valid policy: {exc}") from None
    if policy.content_hash() != c.policy_hash:
        raise DomainError(
            "change_policy.hash_mismatch",
            f"the policy content hashes to {policy.content_hash()}, not the {c.policy_hash} named",
        )
    if c.policy_hash == s.policy_hash:
        raise DomainError("change_policy.unchanged", f"case {s.case_id} is already on policy {c.policy_hash[:12]}")
    if s.calendar is not None and s.calendar not in policy.calendars:
        raise DomainError(
            "change_policy.calendar_missing",
            f"case {s.case_id} runs on calendar {s.calendar!r}, which policy {c.policy_hash[:12]} does not define",
        )
    keep = c.mode == PolicyChangeMode.KEEP
    changed = PolicyChanged(
        mode=c.mode,
        from_hash=s.policy_hash,
        to_hash=c.policy_hash,
        policy_label=policy.label,
        policy=None if keep else policy.content(),
        reason=c.reason,
    )
    after = _fold_provisionally(s, [changed], now)
    moved = [
        DeadlineMove(kind=kind, from_due=_due(s, kind), to_due=_due(after, kind))
        for kind in sorted(set(s.clocks) | set(after.clocks))
        if _due(s, kind) != _due(after, kind)
    ]
    return [changed.model_copy(update={"moved": moved})]


def _due(s: EscalationState, kind: DeadlineKind) -> datetime | None:
    clock = s.clocks.get(kind)
    return clock.due_at if clock is not None else None


def _propose_resolution(s: EscalationState, c: ProposeResolution, now: datetime) -> list[EventData]:
    threshold = s.policy.compensation.approval_threshold
    needs_approval = c.compensation is not None and c.compensation.amount > threshold
    return [
        ResolutionProposed(
            summary=c.summary,
            root_cause=c.root_cause,
            root_cause_text=c.root_cause_text,
            compensation=c.compensation,
            needs_compensation_approval=needs_approval,
            needs_sign_off=s.policy.rules(s.priority).sign_off,
        )
    ]


def _decide_compensation(s: EscalationState, c: DecideCompensation, now: datetime) -> list[EventData]:
    assert s.proposal is not None and s.proposal.compensation is not None  # the guard refused otherwise
    return [
        CompensationDecided(approved=c.approved, amount=s.proposal.compensation.amount, by=c.actor.id, reason=c.reason)
    ]


def _sign_off(s: EscalationState, c: SignOff, now: datetime) -> list[EventData]:
    return [SignedOff(by=c.actor.id)]


def _customer_response(s: EscalationState, c: RecordCustomerResponse, now: datetime) -> list[EventData]:
    assert s.proposal is not None  # the guard refused otherwise
    responded = CustomerResponded(accepted=c.accepted, comment=c.comment)
    if not c.accepted:
        return [responded]
    events: list[EventData] = []
    if s.paused is not None:
        # Resolution ends any wait; the pause is closed so paused time is exact.
        events.append(Resumed(paused_seconds=(now - s.paused.since).total_seconds()))
    paid = s.proposal.compensation.amount if s.proposal.compensation is not None else 0
    return [*events, responded, Resolved(root_cause=s.proposal.root_cause, compensation_paid=paid)]


def _follow_up(s: EscalationState, c: CompleteFollowUp, now: datetime) -> list[EventData]:
    return [FollowUpCompleted(satisfaction=c.satisfaction, comment=c.comment)]


def _close(s: EscalationState, c: Close, now: datetime) -> list[EventData]:
    return [Closed(note=c.note)]


def _reopen(s: EscalationState, c: Reopen, now: datetime) -> list[EventData]:
    return [Reopened(reason=c.reason)]


def _withdraw(s: EscalationState, c: Withdraw, now: datetime) -> list[EventData]:
    events: list[EventData] = []
    if s.paused is not None:
        # Withdrawal ends any wait; the pause is closed so paused time is exact
        # (found by tests/test_domain_properties.py: it used to vanish).
        events.append(Resumed(paused_seconds=(now - s.paused.since).total_seconds()))
    return [*events, Withdrawn(reason=c.reason, note=c.note)]


def _attach_signal(s: EscalationState, c: AttachSignal, now: datetime) -> list[EventData]:
    return [SignalAttached(signal=c.signal)]


_HANDLERS = {
    AssignOwner: _assign,
    Acknowledge: _acknowledge,
    AddNote: _add_note,
    RequestEscalation: _request_escalation,
    DeclineEscalation: _decline_escalation,
    Escalate: _escalate,
    DeEscalate: _de_escalate,
    Pause: _pause,
    Resume: _resume,
    ChangePriority: _change_priority,
    ChangePolicy: _change_policy,
    ProposeResolution: _propose_resolution,
    DecideCompensation: _decide_compensation,
    SignOff: _sign_off,
    RecordCustomerResponse: _customer_response,
    CompleteFollowUp: _follow_up,
    Close: _close,
    Reopen: _reopen,
    Withdraw: _withdraw,
    AttachSignal: _attach_signal,
}

_GUARDS = {
    "assign": _guard_assign,
    "acknowledge": _guard_acknowledge,
    "add_note": _no_guard,
    "request_escalation": _guard_request_escalation,
    "decline_escalation": _guard_decline_escalation,
    "escalate": _guard_escalate,
    "de_escalate": _guard_de_escalate,
    "pause": _guard_pause,
    "resume": _guard_resume,
    "change_priority": _guard_change_priority,
    "change_policy": _guard_change_policy,
    "propose_resolution": _guard_propose_resolution,
    "decide_compensation": _guard_decide_compensation,
    "sign_off": _guard_sign_off,
    "customer_response": _guard_customer_response,
    "follow_up": _guard_follow_up,
    "close": _guard_close,
    "reopen": _guard_reopen,
    "withdraw": _no_guard,
    "attach_signal": _no_guard,
}


# ------------------------------------------------------------------ deadlines


def next_wake(s: EscalationState) -> datetime | None:
    """The next instant at which ``DeadlineReached`` has something to do, if any."""
    instants = [instant for instant, _, _ in _pending(s)]
    return min(instants) if instants else None


def next_deadline(s: EscalationState) -> tuple[datetime, DeadlineKind] | None:
    """The earliest running (not paused) deadline and its kind, warnings aside."""
    running = [(c.due_at, k) for k, c in s.clocks.items() if not s.clock_suspended(k)]
    return min(running) if running else None


def _pending(s: EscalationState) -> list[tuple[datetime, int, DeadlineKind]]:
    """(instant, 0 for a warning / 1 for a breach, kind) for every running clock."""
    items = []
    for kind, clock in s.clocks.items():
        if s.clock_suspended(kind):
            continue
        warning = clock.warning_at(s.policy.warning_at)
        if warning is not None:
            items.append((warning, 0, kind))
        items.append((clock.due_at, 1, kind))
    return items


def _enforce_deadlines(state: EscalationState, now: datetime) -> list[EventData]:
    produced: list[EventData] = []
    s = state
    for _ in range(MAX_ENFORCEMENTS_PER_TICK):
        due = sorted(item for item in _pending(s) if item[0] <= now)
        if not due:
            return produced
        _, is_breach, kind = due[0]
        step = _breach(s, kind, now) if is_breach else [_warning(s, kind, now)]
        produced.extend(step)
        s = _fold_provisionally(s, step, now)
    raise RuntimeError(f"case {state.case_id}: more than {MAX_ENFORCEMENTS_PER_TICK} deadlines due at once")


def _warning(s: EscalationState, kind: DeadlineKind, now: datetime) -> EventData:
    return DeadlineWarning(kind=kind, level=s.level, due_at=s.clocks[kind].due_at, detected_at=now)


def _breach(s: EscalationState, kind: DeadlineKind, now: datetime) -> list[EventData]:
    clock = s.clocks[kind]
    due = clock.due_at
    policy = s.policy
    at_top = s.level >= policy.top_level
    if kind == DeadlineKind.FOLLOW_UP:
        return [FollowUpDue(due_at=due, detected_at=now)]
    if kind == DeadlineKind.UPDATE:
        next_due = clock.after(due, clock.length)
        return [DeadlineBreached(kind=kind, level=s.level, due_at=due, detected_at=now, next_due_at=next_due)]
    if kind == DeadlineKind.ACKNOWLEDGE:
        interval = policy.escalation.repeat_at_top if at_top else policy.rules(s.priority).acknowledge
    else:  # RESOLVE: repeats on the interval, each repeat escalating until the top
        interval = policy.escalation.repeat_at_top
    events: list[EventData] = [
        DeadlineBreached(kind=kind, level=s.level, due_at=due, detected_at=now, next_due_at=clock.after(due, interval))
    ]
    if not at_top:
        events.append(Escalated(from_level=s.level, to_level=s.level + 1, cause=EscalationCause.BREACH))
    return events


_PROVISIONAL_ID = uuid.UUID(int=0)


def _fold_provisionally(s: EscalationState, payloads: list[EventData], now: datetime) -> EscalationState:
    """Fold payloads not yet stored, to see what falls due after them (ids are placeholders)."""
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


def envelopes(
    stream_id: str,
    after_version: int,
    payloads: list[EventData],
    *,
    actor: Actor,
    now: datetime,
    ids: list[uuid.UUID],
    command_key: str | None,
    command_digest: str | None = None,
    correlation_id: str | None = None,
) -> list[NewEvent]:
    """Wrap decided payloads for storage. ``ids`` come from the caller (the workflow's ``case_event_id``)."""
    return [
        NewEvent(
            event_id=event_id,
            stream_id=stream_id,
            version=after_version + offset,
            occurred_at=now,
            actor=actor,
            command_key=command_key,
            command_digest=command_digest,
            correlation_id=correlation_id,
            causation_id=command_key,
            data=data,
        )
        for offset, (data, event_id) in enumerate(zip(payloads, ids, strict=True), start=1)
    ]
