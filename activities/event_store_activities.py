"""The only side effects the workflow calls. Dependencies are injected in ``worker.py``.

Run as *local* activities: an append is a few milliseconds of database work, and
a local activity avoids two server round trips per command. Retried with
backoff on any transient failure (a database outage only delays). A stream that
is ahead of the workflow returns the stored events after the expected version
for the workflow to fold (see ``_record_ahead_of``); any other conflict is
non-retryable because retrying cannot make it succeed.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contract import APPEND_EVENTS, CURRENT_POLICY, AppendRequest
from observability import metrics
from workflows.core.events import RecordedEvent, case_id_of
from workflows.core.policy import Policy

if TYPE_CHECKING:  # the store (and asyncpg) must never be imported by workflow code
    from events.port import EventStorePort

_log = structlog.get_logger("escalations.activities")


class EscalationActivities:
    def __init__(self, store: EventStorePort, policy: Policy | Callable[[], Policy | Awaitable[Policy]]) -> None:
        """``policy`` is the policy in force, or a function (sync or async) returning it at each opening."""
        self._store = store
        self._policy = policy

    @activity.defn(name=APPEND_EVENTS)
    async def append_events(self, request: AppendRequest) -> list[RecordedEvent]:
        """Append with the expected version; idempotent for re-sent event ids."""
        from events.records import ConcurrencyConflict

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
            record = await self._record_ahead_of(request)
            if not record:
                log.error("append refused", error=str(exc))
                raise ApplicationError(str(exc), type="ConcurrencyConflict", non_retryable=True) from exc
            log.info(
                "stream is ahead of the workflow; returning the record to fold",
                conflict=str(exc),
                versions=[e.version for e in record],
            )
            return record
        except ValueError as exc:
            log.error("append refused", error=str(exc))
            raise ApplicationError(str(exc), type="InvalidAppend", non_retryable=True) from exc
        for event in recorded:
            log.info("event stored", event_type=event.type, version=event.version, position=event.position)
        # Breaches with their lateness, warnings, escalations. A retried append that finds its events stored
        # counts them again; retries of a local append that succeeded are rare (its reply lost with a worker).
        metrics.record_stored(recorded)
        return recorded

    async def _record_ahead_of(self, request: AppendRequest) -> list[RecordedEvent]:
        """The stored events after ``expected_version``, when the conflict is the workflow's own past.

        A case's stream has one writer, its workflow (the workflow id is the
        stream id). So events stored after the version the workflow expects were
        appended by that same workflow from a task Temporal later discarded (an
        aborted speculative update task, or a task whose completion was lost
        with a killed worker); its replay may draw ids that match them only in
        part. They are the record: the workflow folds them and decides again.
        An opening (version 0) is never adopted: a stream that already exists
        belongs to another case.
        """
        if request.expected_version == 0:
            return []
        return await self._store.read_stream(request.stream_id, from_version=request.expected_version + 1)

    @activity.defn(name=CURRENT_POLICY)
    async def current_policy(self) -> Policy:
        """The policy in force now; the workflow pins it into the opening event."""
        policy = self._policy() if callable(self._policy) else self._policy
        return await policy if inspect.isawaitable(policy) else policy

    def all(self) -> list:
        return [self.append_events, self.current_policy]
