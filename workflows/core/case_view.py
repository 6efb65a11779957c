"""What a reader is told about a case: its state without the pinned policy and the idempotency bookkeeping,
with its deadlines computed.

``EscalationState`` is the write model: it carries the whole pinned policy so that ``decide`` has every
rule at hand, and only continue-as-new moves it around whole. Replies, queries and case reads answer
with ``CaseView`` instead: every field of the state but ``policy`` (its label and hash stay) and the
idempotency bookkeeping (only the opening's key and digest stay), plus each
running deadline's due and warning instants as the case's own calendar counts them, so no client has
to redo the calendar maths (or gets it wrong on business hours and pauses).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from workflows.core.state import CaseFacts, EscalationState
from workflows.core.vocabulary import (
    DeadlineKind,
)


class DeadlineView(BaseModel):
    """One running deadline. ``due_at`` is on the case's calendar (working time where it has one) and
    includes the paused time added so far; while ``suspended`` (paused), it does not come nearer."""

    model_config = ConfigDict(frozen=True)

    kind: DeadlineKind
    due_at: datetime
    warning_at: datetime | None
    started_at: datetime
    suspended: bool
    repeat: bool


class CaseView(CaseFacts):
    """A case as readers see it: every fact of ``EscalationState`` (``CaseFacts``) but its pinned
    ``policy`` and its idempotency bookkeeping, and ``deadlines``. Of the bookkeeping it keeps what an
    opening sent again needs (the opening's key and digest): a fixed size, whatever the case's length."""

    # A reply written by another version of this code (a rolling deploy, an update answered again from
    # Temporal's record, a stored API reply) may carry fields this one lacks or has dropped: it still reads.
    model_config = ConfigDict(frozen=True, extra="ignore")

    deadlines: list[DeadlineView]
    opened_with_key: str | None = None  # the idempotency key of the command that opened the case
    opened_with_digest: str | None = None  # what that command asked (``Command.digest``), if recorded


def case_view(state: EscalationState) -> CaseView:
    """The view of ``state``: its fields without ``policy`` and the bookkeeping, and its deadlines soonest first."""
    deadlines = sorted(
        (
            DeadlineView(
                kind=kind,
                due_at=clock.due_at,
                warning_at=clock.warning_at(state.policy.warning_at),
                started_at=clock.started_at,
                suspended=state.clock_suspended(kind),
                repeat=clock.repeat,
            )
            for kind, clock in state.clocks.items()
        ),
        key=lambda d: (d.due_at, d.kind.value),
    )
    fields = {name: getattr(state, name) for name in CaseFacts.model_fields}
    # A view has no policy to re-attach calendars from: its clocks are the plain data (the computed
    # instants are in ``deadlines``), so a view equals itself after a round trip through JSON.
    fields["clocks"] = {kind: clock.model_copy(update={"calendar": None}) for kind, clock in state.clocks.items()}
    opening_key = next((key for key, versions in state.command_keys.items() if 1 in versions), None)
    return CaseView(
        **fields,
        deadlines=deadlines,
        opened_with_key=opening_key,
        opened_with_digest=state.command_digests.get(opening_key) if opening_key is not None else None,
    )
