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

from activities import policy_library
from activities.contract import (
    APPEND_EVENTS,
    CURRENT_POLICY,
    CURRENT_POLICY_REFERENCE,
    AppendReply,
    AppendRequest,
    PolicyReference,
    Receipt,
)
from observability import metrics
from workflows.core.events import NewEvent, RecordedEvent, case_id_of
from workflows.core.policy import Policy

if TYPE_CHECKING:  # the store (and asyncpg) must never be imported by workflow code
    from events.pinned_policies import PolicyPins
    from events.port import EventStorePort

_log = structlog.get_logger("escalations.activities")


class EscalationActivities:
    def __init__(
        self,
        store: EventStorePort,
        policy: Policy | Callable[[], Policy | Awaitable[Policy]],
        pins: PolicyPins,
    ) -> None:
        """``policy`` is the policy in force, or a function (sync or async) returning it at each opening;
        ``pins`` keeps every policy a case opens under, by hash, for the workers that replay it."""
        self._store = store
        self._policy = policy
        self._pins = pins
        self._pinned: set[str] = set()  # hashes this process has pinned already

    @activity.defn(name=APPEND_EVENTS)
    async def append_events(self, request: AppendRequest) -> list[RecordedEvent] | AppendReply:
        """Append with the expected version; idempotent for re-sent event ids.

        The reply is an ``AppendReply`` when ``request.receipts`` (the compact history), else the recorded
        events in full."""
        recorded = await self._append(request)
        if not request.receipts:
            return recorded
        if _as_sent(recorded, request.events):
            return AppendReply(
                receipts=[
                    Receipt(
                        version=e.version,
                        position=e.position,
                        recorded_at=e.recorded_at,
                        prev_hash=e.prev_hash,
                        hash=e.hash,
                    )
                    for e in recorded
                ]
            )
        return AppendReply(events=recorded)

    async def _append(self, request: AppendRequest) -> list[RecordedEvent]:
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
        """The policy in force now, whole (the workflow's path for histories before the compact history)."""
        policy = self._policy() if callable(self._policy) else self._policy
        return await policy if inspect.isawaitable(policy) else policy

    @activity.defn(name=CURRENT_POLICY_REFERENCE)
    async def current_policy_reference(self) -> PolicyReference:
        """The policy in force now, by reference; the workflow pins it into the opening event.

        Before answering, the policy is pinned (in ``pins``, where a worker replaying the case finds it) and
        known to this process's policy library, where the workflow takes it from by hash.
        """
        policy = await self.current_policy()
        return PolicyReference(label=policy.label, content_hash=await self._pin(policy))

    async def _pin(self, policy: Policy) -> str:
        """Pin ``policy`` where every worker finds it, and know it in this process; its content hash."""
        content_hash = policy_library.remember(policy)
        if content_hash not in self._pinned:
            await self._pins.pin(policy, content_hash)
            self._pinned.add(content_hash)
        return content_hash

    def all(self) -> list:
        return [self.append_events, self.current_policy, self.current_policy_reference]


def _as_sent(recorded: list[RecordedEvent], sent: list[NewEvent]) -> bool:
    """Whether the store holds exactly the events sent (else it answered a re-append with its record)."""
    return len(recorded) == len(sent) and all(
        getattr(stored, field) == getattr(event, field)
        for stored, event in zip(recorded, sent, strict=True)
        for field in NewEvent.model_fields
    )
