"""What every command shares, and the registry that declares each command in one place.

A command is declared once, in its ``commands_*`` module, by ``register``: its class, the roles
that may run it, its guard (the rules that depend on the case alone), its handler (the events it
produces), its HTTP route segment, and how a shadow run reads it back from its recorded events.
Everything else (``decide``, the permission table, the workflow's updates, the API's routes,
``policy simulate``) is built from this registry, and ``tests/test_completeness.py`` fails if a
command or an event type lacks any part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from workflows.core.canonical import canonical_json, sha256_hex
from workflows.core.errors import DomainError
from workflows.core.events import Actor, EventData, Identifier
from workflows.core.state import ACTIVE, EscalationState
from workflows.core.vocabulary import Role


class Command(BaseModel):
    """A request to a case. Each carries its actor and an idempotency key: a command whose key the case
    has already seen changes nothing. ``command`` is the stable discriminator, also the update name and
    the permission table's key."""

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

    @classmethod
    def command_name(cls) -> str:
        return str(cls.model_fields["command"].default)


class DeadlineReached(BaseModel):
    """The workflow's timer fired: enforce whatever is due at ``now`` (system only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    command: ClassVar[str] = "deadline_reached"


C = TypeVar("C", bound=Command)
Guard = Callable[[EscalationState, datetime], None]
Handler = Callable[[EscalationState, Any, datetime], list[EventData]]
# (the recorded event's payload, the envelope's actor/key/correlation as fields) -> the command, or None
# when this event was not the command's (an escalation caused by a breach, say).
Replay = Callable[[Any, dict[str, Any]], Command | None]


@dataclass(frozen=True)
class CommandSpec(Generic[C]):
    """One command, whole. ``handler`` runs after ``guard`` (and after the role and the case's status
    were checked) and returns the events, in order; both raise ``DomainError`` naming the rule.

    ``route`` is the segment of ``POST /v1/escalations/{case_id}/{route}`` (the opening has its own
    route). ``recorded_by`` is the event type whose presence in a command's events records it; a
    shadow run turns that event back into the command with ``replay`` (None: never replayed, with
    ``not_replayed`` saying why).
    """

    command: type[C]
    roles: frozenset[Role]
    route: str
    handler: Handler
    guard: Guard | None
    recorded_by: type[EventData] | None
    replay: Replay | None
    not_replayed: str | None = None
    signal: bool = False  # also accepted as a Temporal signal (a fact sent without waiting)

    @property
    def name(self) -> str:
        return self.command.command_name()


REGISTRY: dict[str, CommandSpec[Any]] = {}


def register(
    command: type[C],
    *,
    roles: frozenset[Role],
    route: str,
    guard: Guard | None,
    recorded_by: type[EventData] | None,
    replay: Replay | None = None,
    not_replayed: str | None = None,
    signal: bool = False,
) -> Callable[[Callable[[EscalationState, C, datetime], list[EventData]]], Callable[..., list[EventData]]]:
    """Declare ``command`` with its handler (the decorated function). See ``CommandSpec``."""

    def declare(handler: Callable[[EscalationState, C, datetime], list[EventData]]) -> Callable[..., list[EventData]]:
        name = command.command_name()
        if name in REGISTRY:
            raise ValueError(f"command {name!r} is declared twice")
        if (replay is None) == (not_replayed is None):
            raise ValueError(f"command {name!r}: give a replay mapping, or not_replayed with the reason")
        REGISTRY[name] = CommandSpec(
            command=command,
            roles=roles,
            route=route,
            handler=handler,
            guard=guard,
            recorded_by=recorded_by,
            replay=replay,
            not_replayed=not_replayed,
            signal=signal,
        )
        return handler

    return declare


# ---------------------------------------------------------------------------- rules guards share


def no_guard(s: EscalationState, now: datetime) -> None:
    """The command depends on nothing about the case but its being open to commands."""
    return None


def require_active(s: EscalationState, rule: str) -> None:
    if s.status not in ACTIVE:
        raise DomainError(rule, f"case {s.case_id} is {s.status.value}; this needs an open case")


def require_below_top(s: EscalationState, command: str) -> None:
    if s.level >= s.policy.top_level:
        raise DomainError(
            f"{command}.already_at_top", f"case {s.case_id} is already at the top level {s.policy.top_level}"
        )


def check_level_in_range(s: EscalationState, wanted: int, command: str) -> None:
    top = s.policy.top_level
    if not s.level < wanted <= top:
        raise DomainError(
            f"{command}.level_out_of_range", f"level must be above {s.level} and at most {top}, got {wanted}"
        )
