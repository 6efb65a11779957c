"""The only side effects the workflow calls. Dependencies are injected in ``worker.py``.

Run as *local* activities: an append is a few milliseconds of database work, and
a local activity avoids two server round trips per command. Retried with
backoff on any transient failure (a database outage only delays); a conflict is
non-retryable because retrying cannot make it succeed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog
from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from events.models import NewEvent, RecordedEvent, case_id_of
from workflows.policy import Policy

if TYPE_CHECKING:  # the store (and asyncpg) must never be imported by workflow code
    from events.store import EventStore

APPEND_EVENTS = "append_events"
CURRENT_POLICY = "current_policy"
NON_RETRYABLE_APPEND_ERRORS = ["ConcurrencyConflict", "InvalidAppend"]

_log = structlog.get_logger("escalations.activities")


class AppendRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    stream_id: str
    expected_version: int
    events: list[NewEvent]


class EscalationActivities:
    def __init__(self, store: EventStore, policy: Policy | Callable[[], Policy]) -> None:
        """``policy`` is the policy in force, or a function returning it at each opening."""
        self._store = store
        self._policy = policy

    @activity.defn(name=APPEND_EVENTS)
    async def append_events(self, request: AppendRequest) -> list[RecordedEvent]:
        """Append with the expected version; idempotent for re-sent event ids."""
        from events.store import ConcurrencyConflict

        info = activity.info()
        log = _log.bind(
            stream_id=request.stream_id,
            case_id=case_id_of(request.stream_id),
            workflow_id=info.workflow_id,
            attempt=info.attempt,
        )
        try:
            recorded = await self._store.append(request.stream_id, request.expected_version, request.events)
        except ConcurrencyConflict as exc:
            log.error("append refused", error=str(exc))
            raise ApplicationError(str(exc), type="ConcurrencyConflict", non_retryable=True) from exc
        except ValueError as exc:
            log.error("append refused", error=str(exc))
            raise ApplicationError(str(exc), type="InvalidAppend", non_retryable=True) from exc
        for event in recorded:
            log.info("event stored", event_type=event.type, version=event.version, position=event.position)
        return recorded

    @activity.defn(name=CURRENT_POLICY)
    async def current_policy(self) -> Policy:
        """The policy in force now; the workflow pins it into the opening event."""
        return self._policy() if callable(self._policy) else self._policy

    def all(self) -> list:
        return [self.append_events, self.current_policy]
