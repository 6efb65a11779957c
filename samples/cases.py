"""A pure, in-memory driver of the domain core (no Temporal, no database), for tests and benchmarks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from workflows.core.commands import Command, DeadlineReached, OpenEscalation
from workflows.core.decide import decide, decide_open, envelopes, next_wake
from workflows.core.events import SYSTEM_ACTOR, Actor, Customer, EventData, NewEvent, stream_id_for
from workflows.core.evolve import evolve, fold
from workflows.core.policy import Policy
from workflows.core.state import EscalationState
from workflows.core.vocabulary import Category, CustomerTier, LifecycleStage, Role, Severity, SourceKind
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DEFAULT_POLICY = load_policy(DEFAULT_POLICY_PATH)

AGENT = Actor(id="alice", role=Role.AGENT)
MANAGER = Actor(id="maria", role=Role.MANAGER)
EXECUTIVE = Actor(id="eve", role=Role.EXECUTIVE)
SERVICE = Actor(id="crm", role=Role.SERVICE)
AUDITOR = Actor(id="audrey", role=Role.AUDITOR)


def open_command(case_id: str | None = None, *, actor: Actor = AGENT, **overrides: Any) -> OpenEscalation:
    fields: dict[str, Any] = dict(
        actor=actor,
        idempotency_key=f"open-{uuid.uuid4().hex}",
        case_id=case_id or f"case-{uuid.uuid4().hex[:10]}",
        customer=Customer(id="acme", name="ACME Corp", tier=CustomerTier.STRATEGIC, annual_value=Decimal(250_000)),
        category=Category.TECHNICAL,
        lifecycle_stage=LifecycleStage.ONGOING_SUPPORT,
        severity=Severity.SEV1,
        title="Checkout down",
        description="Customers cannot pay since the last release.",
        source=SourceKind.CUSTOMER,
    )
    fields.update(overrides)
    return OpenEscalation(**fields)


def command(cls: type[Command], actor: Actor = AGENT, **fields: Any) -> Command:
    return cls(actor=actor, idempotency_key=f"k-{uuid.uuid4().hex}", **fields)


class Case:
    """Opens a case at ``start`` (default ``T0``) and applies commands at a moving clock, keeping every event."""

    def __init__(self, policy: Policy = DEFAULT_POLICY, *, start: datetime = T0, **open_fields: Any) -> None:
        self.now = start
        cmd = open_command(**open_fields)
        self.events: list[NewEvent] = []
        self.state: EscalationState | None = None
        self._record(decide_open(cmd, policy), cmd, stream_id_for(cmd.case_id))

    @property
    def s(self) -> EscalationState:
        assert self.state is not None
        return self.state

    def _record(self, payloads: list[EventData], cmd: Command | None, stream: str) -> list[EventData]:
        """Store ``payloads`` as ``cmd``'s events (None: the system's, from a deadline)."""
        version = self.state.version if self.state else 0
        new = envelopes(
            stream,
            version,
            payloads,
            actor=cmd.actor if cmd is not None else SYSTEM_ACTOR,
            now=self.now,
            ids=[uuid.uuid4() for _ in payloads],
            command_key=cmd.idempotency_key if cmd is not None else None,
            command_digest=cmd.digest() if cmd is not None else None,
        )
        for event in new:
            self.state = evolve(self.state, event)
        self.events.extend(new)
        return payloads

    def do(self, cmd: Command, *, after: timedelta = timedelta(0)) -> list[EventData]:
        """Advance the clock by ``after`` (enforcing deadlines on the way), then run ``cmd``."""
        self.advance(after)
        return self._record(decide(self.s, cmd, self.now), cmd, self.s.stream_id)

    def advance(self, delta: timedelta) -> list[EventData]:
        """Move the clock, firing every deadline in between at its own instant (like the timer loop)."""
        target = self.now + delta
        fired: list[EventData] = []
        while (wake := next_wake(self.s)) is not None and wake <= target:
            self.now = max(self.now, wake)
            fired += self._record(decide(self.s, DeadlineReached(), self.now), None, self.s.stream_id)
        self.now = target
        return fired

    def types(self) -> list[str]:
        return [e.data.type.removeprefix("escalation.") for e in self.events]

    def refold(self) -> EscalationState | None:
        return fold(self.events)
