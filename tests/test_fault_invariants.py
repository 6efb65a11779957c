"""The fault suite's deadline invariant on histories made by the pure core: a correct one holds; one in which a
command was decided while a deadline was due and not yet enforced (the bug class behind a lost breach) fails."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

import pytest

from samples.cases import Case, command
from tests.faults.invariants import check_deadlines
from workflows.core.commands import Acknowledge
from workflows.core.events import RecordedEvent
from workflows.core.vocabulary import Severity

LATE = timedelta(hours=1)  # a P1 is to be acknowledged within 15 minutes


def acknowledged_late() -> Case:
    case = Case(severity=Severity.SEV1)
    case.do(command(Acknowledge), after=LATE)  # the breaches on the way are enforced at their instants first
    return case


def test_a_history_whose_commands_followed_every_due_deadline_holds() -> None:
    case = acknowledged_late()
    assert "deadline_breached" in case.types()
    check_deadlines("ok", cast(list[RecordedEvent], case.events), case.now, timedelta(seconds=5))


def test_a_command_decided_while_a_deadline_was_due_and_unenforced_is_caught() -> None:
    case = acknowledged_late()
    # The same command with the deadline events before it missing: decided over an unenforced breach.
    skipped = [e for e in case.events if e.command_key is not None]
    with pytest.raises(AssertionError, match="was decided at .* while something due at .* was not yet enforced"):
        check_deadlines("lost", cast(list[RecordedEvent], skipped), case.now, timedelta(seconds=5))
