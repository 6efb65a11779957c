"""Shadow runs: what a candidate policy would have done to recorded cases, through the pure core.

``recorded_commands`` reads back the commands a case's history records (each
command's events carry its idempotency key and actor); ``replay`` runs them
again, at the instants they were decided, against the candidate policy,
firing every deadline at its own instant as the workflow's timer loop does.
``compare`` sets the replay beside what happened. Nothing here touches the
store or Temporal: the caller reads the streams (``escalations policy simulate``).

A case's own ``change_policy`` decisions are not replayed: the candidate is in
force throughout, which is the question a shadow run asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workflows.core.commands import (
    SPECS,
    Command,
    DeadlineReached,
    OpenEscalation,
    replay_open,
)
from workflows.core.decide import decide, decide_open, envelopes, next_wake
from workflows.core.directory import OpeningContext, recorded_context
from workflows.core.errors import DomainError
from workflows.core.events import SYSTEM_ACTOR, DeadlineBreached, EventData, NewEvent, Opened, case_event_id
from workflows.core.evolve import evolve, fold
from workflows.core.policy import Policy
from workflows.core.state import EscalationState
from workflows.core.vocabulary import DeadlineKind

Breach = tuple[DeadlineKind, int, datetime]  # (kind, level, due_at)
RouteSummary = tuple[str, str, str | None]  # (rule, team, owner)


def route_of(events: Sequence[NewEvent]) -> RouteSummary | None:
    """The route an opening recorded, as (rule, team, owner)."""
    opened = events[0].data if events else None
    route = opened.route if isinstance(opened, Opened) else None
    return (route.rule, route.team, route.owner) if route is not None else None


# The event type that records each replayable command (declared with the command).
_REPLAYED_FROM = {spec.recorded_by: spec for spec in SPECS.values() if spec.replay is not None}


def _command_for(data: EventData, fields: dict[str, Any]) -> Command | OpenEscalation | None:
    """The command ``data`` records, if it records one (None for system events and for the
    secondary events of a command, such as the ``Resumed`` a withdrawal of a paused case begins with)."""
    if isinstance(data, Opened):
        return replay_open(data, fields)
    spec = _REPLAYED_FROM.get(type(data))
    return spec.replay(data, fields) if spec is not None and spec.replay is not None else None


@dataclass(frozen=True)
class RecordedCommand:
    at: datetime
    command: Command | OpenEscalation


def recorded_commands(events: Sequence[NewEvent]) -> list[RecordedCommand]:
    """The commands a case's events record, in order, each with the instant it was decided."""
    groups: list[list[NewEvent]] = []
    for event in events:
        if event.command_key is None:
            continue  # the system's own (deadlines): the replay fires them itself
        if groups and groups[-1][0].command_key == event.command_key:
            groups[-1].append(event)
        else:
            groups.append([event])
    commands = []
    for group in groups:
        first = group[0]
        fields = {"actor": first.actor, "idempotency_key": first.command_key, "correlation_id": first.correlation_id}
        # A command's own event comes last among those that record a command: a withdrawal or an
        # acceptance of a paused case begins with the Resumed that closes the pause.
        recorded = [c for c in (_command_for(e.data, fields) for e in group) if c is not None]
        if recorded:
            commands.append(RecordedCommand(at=first.occurred_at, command=recorded[-1]))
    return commands


@dataclass
class Replay:
    """A case replayed under a policy: its events, and the commands the policy refused."""

    events: list[NewEvent] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (command, rule)

    @property
    def state(self) -> EscalationState | None:
        return fold(self.events)


def replay(
    commands: Sequence[RecordedCommand], policy: Policy, until: datetime, opening: OpeningContext | None = None
) -> Replay:
    """Run ``commands`` against ``policy``, firing deadlines at their instants, up to ``until``; the opening
    is routed with ``opening`` (what the directory said then, ``recorded_context``)."""
    context = opening
    result = Replay()
    first = commands[0]
    opening_command = first.command
    assert isinstance(opening_command, OpenEscalation), "a case history starts with its opening"
    state: EscalationState | None = None

    def record(payloads: list[EventData], at: datetime, command: Command | OpenEscalation | None) -> None:
        nonlocal state
        stream = state.stream_id if state is not None else f"escalation-{opening_command.case_id}"
        version = state.version if state is not None else 0
        new = envelopes(
            stream,
            version,
            payloads,
            actor=command.actor if command is not None else SYSTEM_ACTOR,
            now=at,
            ids=[case_event_id(stream, version + i) for i in range(1, len(payloads) + 1)],
            command_key=command.idempotency_key if command is not None else None,
            correlation_id=command.correlation_id if command is not None else None,
        )
        for event in new:
            state = evolve(state, event)
        result.events.extend(new)

    def advance(to: datetime) -> None:
        while state is not None and (wake := next_wake(state)) is not None and wake <= to:
            record(decide(state, DeadlineReached(), wake), wake, None)

    try:
        record(decide_open(opening_command, policy, context), first.at, opening_command)
    except DomainError as exc:
        result.refused.append(("open", exc.rule))
        return result
    for recorded in commands[1:]:
        advance(recorded.at)
        assert state is not None  # the opening was recorded
        try:
            record(decide(state, recorded.command, recorded.at), recorded.at, recorded.command)
        except DomainError as exc:
            result.refused.append((recorded.command.command_name(), exc.rule))
    advance(until)
    return result


def breaches(events: Sequence[NewEvent]) -> set[Breach]:
    return {(e.data.kind, e.data.level, e.data.due_at) for e in events if isinstance(e.data, DeadlineBreached)}


@dataclass(frozen=True)
class CaseComparison:
    case_id: str
    breaches_actual: int
    breaches_simulated: int
    appearing: list[Breach]
    disappearing: list[Breach]
    max_level_actual: int
    max_level_simulated: int
    # Time from opening to the first acknowledge and resolve deadlines.
    acknowledge_within_actual: timedelta | None
    acknowledge_within_simulated: timedelta | None
    resolve_within_actual: timedelta | None
    resolve_within_simulated: timedelta | None
    refused: list[tuple[str, str]]
    # How the case was routed and how it would be: (rule, team, owner); None without routing rules.
    route_actual: RouteSummary | None = None
    route_simulated: RouteSummary | None = None

    @property
    def changed(self) -> bool:
        return bool(self.appearing or self.disappearing or self.refused) or (
            self.max_level_actual != self.max_level_simulated or self.route_actual != self.route_simulated
        )


def _first_span(events: Sequence[NewEvent], kind: DeadlineKind) -> timedelta | None:
    opened = fold(events[:1])
    clock = opened.clocks.get(kind) if opened is not None else None
    return clock.due_at - opened.opened_at if clock is not None and opened is not None else None


def compare(actual: Sequence[NewEvent], policy: Policy, until: datetime | None = None) -> CaseComparison:
    """Replay ``actual`` (one case's events) under ``policy`` up to ``until`` (default: its last event)."""
    horizon = until or actual[-1].occurred_at
    opened = actual[0].data if actual else None
    context = recorded_context(opened.route if isinstance(opened, Opened) else None)
    simulated = replay(recorded_commands(actual), policy, horizon, context)
    actual_breaches = breaches(actual)
    simulated_breaches = breaches(simulated.events)
    actual_state, simulated_state = fold(actual), simulated.state
    return CaseComparison(
        case_id=actual_state.case_id if actual_state is not None else "?",
        breaches_actual=len(actual_breaches),
        breaches_simulated=len(simulated_breaches),
        appearing=sorted(simulated_breaches - actual_breaches),
        disappearing=sorted(actual_breaches - simulated_breaches),
        max_level_actual=actual_state.max_level_reached if actual_state is not None else 0,
        max_level_simulated=simulated_state.max_level_reached if simulated_state is not None else 0,
        acknowledge_within_actual=_first_span(actual, DeadlineKind.ACKNOWLEDGE),
        acknowledge_within_simulated=_first_span(simulated.events, DeadlineKind.ACKNOWLEDGE),
        resolve_within_actual=_first_span(actual, DeadlineKind.RESOLVE),
        resolve_within_simulated=_first_span(simulated.events, DeadlineKind.RESOLVE),
        refused=simulated.refused,
        route_actual=route_of(actual),
        route_simulated=route_of(simulated.events),
    )
