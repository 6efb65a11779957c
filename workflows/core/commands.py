"""Commands: what a person or service asks a case to do (imperative names), each declared in one place.

Each ``commands_*`` module declares its commands whole (class, roles, guard, handler, HTTP route,
shadow-run mapping) with ``command_registry.register``; this module gathers them. Import command
classes from here.
"""

from __future__ import annotations

from typing import Any

from workflows.core import (
    commands_closure,
    commands_escalation,
    commands_handling,
    commands_policy,
    commands_resolution,
)
from workflows.core.command_registry import REGISTRY, Command, CommandSpec, DeadlineReached
from workflows.core.commands_closure import Close, CompleteFollowUp, Reopen, Withdraw
from workflows.core.commands_escalation import DeclineEscalation, DeEscalate, Escalate, RequestEscalation
from workflows.core.commands_handling import (
    Acknowledge,
    AddNote,
    AssignOwner,
    AttachSignal,
    ChangePriority,
    CorrectFacts,
    Pause,
    Resume,
)
from workflows.core.commands_opening import OPEN_ROLES, OpenEscalation, open_case, replay_open
from workflows.core.commands_policy import ChangePolicy
from workflows.core.commands_resolution import DecideCompensation, ProposeResolution, RecordCustomerResponse, SignOff
from workflows.core.vocabulary import Role

# Imported for their registrations, in the order a case lives them (the order commands are offered and listed).
_DECLARING_MODULES = (commands_handling, commands_escalation, commands_policy, commands_resolution, commands_closure)

SPECS: dict[str, CommandSpec[Any]] = {
    name: spec
    for module in _DECLARING_MODULES
    for name, spec in REGISTRY.items()
    if spec.handler.__module__ == module.__name__
}
"""Every command addressed to an existing case (everything but ``open``), by name, as declared."""

COMMAND_CLASSES: dict[str, type[Command]] = {
    "open": OpenEscalation,
    **{name: spec.command for name, spec in SPECS.items()},
}

PERMISSIONS: dict[str, frozenset[Role]] = {
    "open": OPEN_ROLES,
    **{name: spec.roles for name, spec in SPECS.items()},
    DeadlineReached.command: frozenset({Role.SYSTEM}),
}
"""Which role may run which command; checked before ``decide`` looks at the case, so an unauthorised
command is refused with rule ``permission.<command>`` and writes nothing."""

__all__ = [
    "COMMAND_CLASSES",
    "PERMISSIONS",
    "SPECS",
    "Acknowledge",
    "AddNote",
    "AssignOwner",
    "AttachSignal",
    "ChangePolicy",
    "ChangePriority",
    "Close",
    "Command",
    "CommandSpec",
    "CompleteFollowUp",
    "CorrectFacts",
    "DeEscalate",
    "DeadlineReached",
    "DecideCompensation",
    "DeclineEscalation",
    "Escalate",
    "OpenEscalation",
    "Pause",
    "ProposeResolution",
    "RecordCustomerResponse",
    "Reopen",
    "RequestEscalation",
    "Resume",
    "SignOff",
    "Withdraw",
    "open_case",
    "replay_open",
]
