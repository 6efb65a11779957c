"""The activities' contract with the workflow: their names and their one input model.

The workflow imports this module alone (through the sandbox's pass-through), never the
activities' implementation, which brings the store, structlog and Temporal's activity API.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from workflows.core.commands import OpenEscalation
from workflows.core.events import NewEvent
from workflows.core.policy import Policy
from workflows.core.vocabulary import Category

APPEND_EVENTS = "append_events"
CURRENT_POLICY = "current_policy"
# What the directory says when a case opens (its account, the matched team's candidates, level-1 responders).
OPENING_CONTEXT = "opening_context"
# Who answers at levels a case is moving to, as the directory says now.
RESOLVE_RESPONDERS = "resolve_responders"
# Compose the executive digest of a period, keep it and send it to the executives.
COMPOSE_DIGEST = "compose_executive_digest"
NON_RETRYABLE_APPEND_ERRORS = ["ConcurrencyConflict", "InvalidAppend"]


class AppendRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    stream_id: str
    expected_version: int
    events: list[NewEvent]


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
