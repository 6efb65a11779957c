"""The roles' groups that command declarations grant, and who may read.

Each command names the roles that may run it where it is declared (``workflows.core.commands``);
the table of them all is ``workflows.core.commands.PERMISSIONS``.
"""

from __future__ import annotations

from workflows.core.vocabulary import Role

# An admin may do whatever a person may (it exists to operate the system, e.g. fix a stuck case).
STAFF = frozenset({Role.AGENT, Role.MANAGER, Role.EXECUTIVE, Role.ADMIN})
SENIOR = frozenset({Role.MANAGER, Role.EXECUTIVE, Role.ADMIN})
STAFF_AND_SERVICE = STAFF | {Role.SERVICE}

# Reading (cases, audit trail, verification, metrics) is open to every role but the system's own.
READ_ROLES = frozenset(Role) - {Role.SYSTEM}
