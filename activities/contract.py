"""The activities' contract with the workflow: their names and their one input model.

The workflow imports this module alone (through the sandbox's pass-through), never the
activities' implementation, which brings the store, structlog and Temporal's activity API.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from workflows.core.events import NewEvent

APPEND_EVENTS = "append_events"
CURRENT_POLICY = "current_policy"
NON_RETRYABLE_APPEND_ERRORS = ["ConcurrencyConflict", "InvalidAppend"]


class AppendRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    stream_id: str
    expected_version: int
    events: list[NewEvent]
