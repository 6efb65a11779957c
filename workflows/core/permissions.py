"""Which role may run which command (the default table from DESIGN.md section 8).

Checked before ``decide`` looks at the case, so an unauthorised command is
refused with rule ``permission.<command>`` and writes nothing.
"""

from __future__ import annotations

from workflows.core.vocabulary import Role

# An admin may do whatever a person may (it exists to operate the system, e.g. fix a stuck case).
_STAFF = frozenset({Role.AGENT, Role.MANAGER, Role.EXECUTIVE, Role.ADMIN})
_SENIOR = frozenset({Role.MANAGER, Role.EXECUTIVE, Role.ADMIN})
_STAFF_AND_SERVICE = _STAFF | {Role.SERVICE}

PERMISSIONS: dict[str, frozenset[Role]] = {
    "open": _STAFF_AND_SERVICE,
    "add_note": _STAFF_AND_SERVICE,
    "request_escalation": _STAFF_AND_SERVICE,
    "attach_signal": _STAFF_AND_SERVICE,
    "assign": _STAFF,
    "acknowledge": _STAFF,
    "pause": _STAFF,
    "resume": _STAFF,
    "propose_resolution": _STAFF,
    "customer_response": _STAFF,
    "follow_up": _STAFF,
    "close": _STAFF,
    "reopen": _STAFF,
    "escalate": _STAFF,
    "decline_escalation": _SENIOR,
    "de_escalate": _SENIOR,
    "change_priority": _SENIOR,
    "change_policy": _SENIOR,
    "withdraw": _SENIOR,
    "decide_compensation": _SENIOR,
    "sign_off": _SENIOR,
    "deadline_reached": frozenset({Role.SYSTEM}),
}

# Reading (cases, audit trail, verification, metrics) is open to every role but the system's own.
READ_ROLES = frozenset(Role) - {Role.SYSTEM}
