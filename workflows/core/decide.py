"""``decide(state, command, now) -> events``: every business rule, and no I/O.

Contract:
* Returns the event payloads the command produces, in order; the caller wraps
  them in envelopes, stores them, then folds them with ``evolve``.
* Each command's own rules (roles, guard, handler) are declared with it in
  ``workflows.core.commands``; this module dispatches to them and enforces deadlines.
* Refuses with ``DomainError`` naming the rule; a refusal produces no events.
  The actor's role is checked first (``permission.<command>``).
* Never reads a clock: ``now`` is passed in, so the same inputs always give the
  same events (the workflow passes ``workflow.now()``).
* ``DeadlineReached`` enforces everything due at ``now``, oldest first, so
  deadlines that fell while no worker ran are each enforced once, in order,
  with their true ``due_at``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from workflows.core.commands import PERMISSIONS, SPECS, Command, DeadlineReached, OpenEscalation, open_case
from workflows.core.directory import OpeningContext, responders_for
from workflows.core.errors import DomainError
from workflows.core.events import (
    Actor,
    DeadlineBreached,
    DeadlineWarning,
    DeEscalated,
    Escalated,
    EventData,
    FollowUpDue,
    NewEvent,
    PauseExpiring,
    Responder,
    Resumed,
)
from workflows.core.evolve import fold_provisionally
from workflows.core.policy import Policy
from workflows.core.state import EscalationState, Status
from workflows.core.vocabulary import DeadlineKind, EscalationCause, Role

# A case cannot legitimately owe more enforcements than this at one instant
# (a year-long outage at a one-hour repeat interval is ~9,000); the bound keeps
# a corrupt clock from looping forever inside a workflow task.
MAX_ENFORCEMENTS_PER_TICK = 10_000
# A closed case still takes its follow-up (close, then follow up) and a reopen within the window.
CLOSED_CASE_COMMANDS = frozenset({"reopen", "follow_up"})


def authorize(actor: Actor, command_name: str) -> None:
    allowed = PERMISSIONS.get(command_name, frozenset())
    if actor.role not in allowed:
        roles = ", ".join(sorted(r.value for r in allowed)) or "nobody"
        raise DomainError(
            f"permission.{command_name}", f"role {actor.role.value!r} may not {command_name}; allowed: {roles}"
        )


def decide_open(command: OpenEscalation, policy: Policy, context: OpeningContext | None = None) -> list[EventData]:
    """The opening event of a new case under ``policy`` (checked: the role, the override, the calendar,
    the customer), routed with what the directory said (``context``)."""
    authorize(command.actor, "open")
    return open_case(command, policy, context)


def levels_reached(payloads: list[EventData]) -> list[int]:
    """The levels these events move a case to (each needs its responders resolved)."""
    return [p.to_level for p in payloads if isinstance(p, Escalated | DeEscalated)]


def with_responders(
    state: EscalationState, payloads: list[EventData], resolved: Mapping[str, list[Responder]]
) -> list[EventData]:
    """``payloads`` with each move to a level naming who answers there (``resolved``: spec -> people, as the
    directory said at this moment). The record then shows who was told, whatever the directory says later."""
    out: list[EventData] = []
    for p in payloads:
        if isinstance(p, Escalated | DeEscalated):
            p = p.model_copy(update={"responders": responders_for(state.policy.level(p.to_level), resolved)})
        out.append(p)
    return out


def decide(state: EscalationState, command: Command | DeadlineReached, now: datetime) -> list[EventData]:
    """The events ``command`` produces against ``state`` at ``now`` (see module doc)."""
    if isinstance(command, DeadlineReached):
        return _enforce_deadlines(state, now)
    spec = SPECS.get(command.command_name())
    if spec is None or not isinstance(command, spec.command):
        raise DomainError("command.unknown", f"{type(command).__name__} is not a command this case accepts")
    authorize(command.actor, spec.name)
    _check_case_accepts(state, spec.name)
    if spec.guard is not None:
        spec.guard(state, now)
    return spec.handler(state, command, now)


def _check_case_accepts(state: EscalationState, name: str) -> None:
    if state.status == Status.WITHDRAWN:
        raise DomainError("case.withdrawn", f"case {state.case_id} was withdrawn and accepts no commands")
    if state.status == Status.CLOSED and name not in CLOSED_CASE_COMMANDS:
        raise DomainError(
            "case.closed", f"case {state.case_id} is closed; only reopen (within the window) and follow-up are accepted"
        )


def available_commands(state: EscalationState, role: Role, now: datetime) -> list[str]:
    """The commands ``role`` may run on this case at ``now``, by the same rules ``decide`` applies.

    A listed command can still be refused for what its fields say (an owner who
    already owns the case, a level out of range); an unlisted one is always refused.
    """
    allowed = []
    for name, spec in SPECS.items():
        if role not in spec.roles:
            continue
        try:
            _check_case_accepts(state, name)
            if spec.guard is not None:
                spec.guard(state, now)
        except DomainError:
            continue
        allowed.append(name)
    return allowed


# ------------------------------------------------------------------ deadlines


def next_wake(s: EscalationState) -> datetime | None:
    """The next instant at which ``DeadlineReached`` has something to do, if any."""
    instants = [instant for instant, _, _ in _pending(s)]
    return min(instants) if instants else None


def next_deadline(s: EscalationState) -> tuple[datetime, DeadlineKind] | None:
    """The earliest running (not paused) deadline and its kind, warnings aside."""
    running = [(c.due_at, k) for k, c in s.clocks.items() if not s.clock_suspended(k)]
    return min(running) if running else None


PAUSE = "pause"  # the pending item of a pause's end (1) or its reminder (0), beside the clocks' kinds


def _pending(s: EscalationState) -> list[tuple[datetime, int, str]]:
    """(instant, 0 for a warning / 1 for a breach, kind) for every running clock, and the pause's
    reminder and end when the policy limits the pause's reason."""
    items: list[tuple[datetime, int, str]] = []
    for kind, clock in s.clocks.items():
        if s.clock_suspended(kind):
            continue
        warning = clock.warning_at(s.policy.warning_at)
        if warning is not None:
            items.append((warning, 0, kind))
        items.append((clock.due_at, 1, kind))
    ends = pause_ends_at(s)
    if ends is not None and s.paused is not None:
        remind = ends - s.policy.pauses.remind_before
        if not s.paused.reminded and remind > s.paused.since:
            items.append((remind, 0, PAUSE))
        items.append((ends, 1, PAUSE))
    return items


def pause_ends_at(s: EscalationState) -> datetime | None:
    """When the case's pause reaches the policy's maximum for its reason (None: no pause, or no limit)."""
    if s.paused is None:
        return None
    limit = s.policy.pauses.max.get(s.paused.reason)
    return s.paused.since + limit if limit is not None else None


def _enforce_deadlines(state: EscalationState, now: datetime) -> list[EventData]:
    produced: list[EventData] = []
    s = state
    for _ in range(MAX_ENFORCEMENTS_PER_TICK):
        due = sorted(item for item in _pending(s) if item[0] <= now)
        if not due:
            return produced
        _, is_breach, tag = due[0]
        if tag == PAUSE:
            step = _pause_end(s, now) if is_breach else [_pause_reminder(s, now)]
        else:
            kind = DeadlineKind(tag)
            step = _breach(s, kind, now) if is_breach else [_warning(s, kind, now)]
        produced.extend(step)
        s = fold_provisionally(s, step, now)
    raise RuntimeError(f"case {state.case_id}: more than {MAX_ENFORCEMENTS_PER_TICK} deadlines due at once")


def _pause_reminder(s: EscalationState, now: datetime) -> EventData:
    ends = pause_ends_at(s)
    assert s.paused is not None and ends is not None
    return PauseExpiring(reason=s.paused.reason, ends_at=ends, detected_at=now)


def _pause_end(s: EscalationState, now: datetime) -> list[EventData]:
    ends = pause_ends_at(s)
    assert s.paused is not None and ends is not None
    return [Resumed(paused_seconds=(ends - s.paused.since).total_seconds(), automatic=True)]


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
