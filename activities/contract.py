"""The activities' contract with the workflow: their names and their one input model.

The workflow imports this module alone (through the sandbox's pass-through), never the
activities' implementation, which brings the store, structlog and Temporal's activity API.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from workflows.core.commands import OpenEscalation
from workflows.core.events import NewEvent, RecordedEvent
from workflows.core.policy import Policy
from workflows.core.vocabulary import Category

APPEND_EVENTS = "append_events"
# The policy in force, whole (histories recorded before the compact history; see CURRENT_POLICY_REFERENCE).
CURRENT_POLICY = "current_policy"
# The policy in force as a reference (label and content hash), pinned first where every worker finds it.
CURRENT_POLICY_REFERENCE = "current_policy_reference"
# What the directory says when a case opens (its account, the matched team's candidates, level-1 responders).
OPENING_CONTEXT = "opening_context"
# Who answers at levels a case is moving to, as the directory says now.
RESOLVE_RESPONDERS = "resolve_responders"
# Compose the executive digest of a period, keep it and send it to the executives.
COMPOSE_DIGEST = "compose_executive_digest"
NON_RETRYABLE_APPEND_ERRORS = ["ConcurrencyConflict", "InvalidAppend"]


class AppendRequest(BaseModel):
    """Append ``events`` at ``expected_version``. With ``receipts`` the reply is an ``AppendReply``; without,
    the recorded events in full (what histories recorded before the compact history hold)."""

    model_config = ConfigDict(frozen=True)

    stream_id: str
    expected_version: int
    events: list[NewEvent]
    receipts: bool = False


class Receipt(BaseModel):
    """What the store added to one sent event: with the event as sent, the event as recorded."""

    model_config = ConfigDict(frozen=True)

    version: int
    position: int
    recorded_at: datetime
    prev_hash: str
    hash: str


class AppendReply(BaseModel):
    """The outcome of an append, kept small because Temporal's history keeps it.

    ``receipts``, one per sent event in order, when the store holds exactly the events sent (the usual
    case); otherwise ``events``: what the store holds at those versions (the record, which the workflow
    folds instead of what it sent). At most one of the two is non-empty (both are empty for an empty append).
    """

    model_config = ConfigDict(frozen=True)

    receipts: list[Receipt] = []
    events: list[RecordedEvent] = []

    def recorded(self, sent: list[NewEvent]) -> list[RecordedEvent]:
        """The events as recorded: ``events``, or each sent event with its receipt.

        Raises ``ValueError`` if the receipts do not answer ``sent`` one for one (a reply to another append).
        """
        if self.events:
            return list(self.events)
        if [r.version for r in self.receipts] != [e.version for e in sent]:
            raise ValueError(
                f"append receipts for versions {[r.version for r in self.receipts]} answer no append of "
                f"versions {[e.version for e in sent]}"
            )
        # Both halves were validated already; constructing skips validating the event's payload again.
        return [
            RecordedEvent.model_construct(
                **dict(event),
                position=receipt.position,
                recorded_at=receipt.recorded_at,
                prev_hash=receipt.prev_hash,
                hash=receipt.hash,
            )
            for event, receipt in zip(sent, self.receipts, strict=True)
        ]


class PolicyReference(BaseModel):
    """A policy by its label and the sha256 of its canonical content (``Policy.content_hash``)."""

    model_config = ConfigDict(frozen=True)

    label: str
    content_hash: str


class OpeningRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    command: OpenEscalation
    policy: Policy


class RespondersRequest(BaseModel):
    """Resolve ``specs`` for a case of ``team`` and ``category`` owned by ``owner`` for ``customer_id``."""

    model_config = ConfigDict(frozen=True)

    specs: list[str]
    team: str | None
    owner: str | None
    category: Category
    customer_id: str


class DigestRequest(BaseModel):
    """Compose the digest of the ``hours`` before the scheduled instant (``scheduled_at``, the workflow's
    start: a late run covers the period it was scheduled for)."""

    model_config = ConfigDict(frozen=True)

    hours: int = 24
    scheduled_at: datetime
