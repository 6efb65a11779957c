"""The PostgreSQL event store: append-only, gapless per stream, hash-chained.

Guarantees (each backed by a test in tests/test_event_store.py):
* ``append`` is atomic: all of a batch is stored or none of it.
* Versions of a stream are 1..n without gaps (checked here and by a trigger).
* Re-appending events whose ids are already stored is a no-op that returns the
  stored events: this is what makes a retried append activity safe. The stored
  copy wins, because a retried workflow task may stamp a later ``occurred_at``
  on the same deterministic event id.
* Appending a *different* event at an existing version raises
  ``ConcurrencyConflict`` (callers treat it as non-retryable).
* ``hash = sha256(prev_hash || body)`` over the exact stored bytes of ``body``.
* ``read_all(after)`` returns events in position order and never skips one that
  a concurrent writer commits late, because appends are serialised (see below).
* Appends through one store that overlap in time are sent in one call and one
  transaction (group commit); each still succeeds or fails on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from events.personal_data import Sealer, fetch_keys, key_ids_in, keys_for_rows
from events.records import (
    ZERO_HASH,
    ChainBreak,
    ConcurrencyConflict,
    CorruptEvent,
    EventStoreError,
    StoredRow,
    body_for,
    chain_hash,
    check_batch,
    link_problem,
    parse_row,
    recorded_as_made,
)
from observability import metrics, tracing
from workflows.core.events import NewEvent, RecordedEvent

__all__ = [  # the record's rules, re-exported for the store's callers
    "ZERO_HASH",
    "ChainBreak",
    "ConcurrencyConflict",
    "CorruptEvent",
    "EventStore",
    "EventStoreError",
    "StoredRow",
    "chain_hash",
    "fetch_after",
    "head_position",
    "link_problem",
]

NOTIFY_CHANNEL = "escalation_events"

# One lock for all appends (advisory key "esc_appd", taken inside the
# append_batch() function of 0004_append_function.sql). Holding it for the
# length of the append transaction means a position is allocated only after
# every earlier append has committed, so positions become visible in order and
# a reader following them cannot skip an event (invariant 4 of docs/architecture.md). It costs write
# parallelism, which bench/ measures.


_RECORD_COLUMNS = ("position", "stream_id", "version", "event_id", "body", "prev_hash", "hash")
_COLUMNS = ", ".join(_RECORD_COLUMNS)


async def parse_rows(conn: asyncpg.Connection | asyncpg.Pool, rows: Sequence[Mapping[str, Any]]) -> list[RecordedEvent]:
    """The events ``rows`` hold, their sealed fields opened with the keys read now (one query, if any)."""
    keys = await keys_for_rows(conn, [r["body"] for r in rows])
    return [parse_row(r, keys) for r in rows]


async def fetch_after(conn: asyncpg.Connection, after_position: int, limit: int) -> list[RecordedEvent]:
    """Events with ``position > after_position`` in position order, on the caller's connection."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2", after_position, limit
    )
    return await parse_rows(conn, rows)


async def fetch_stream_before(conn: asyncpg.Connection, stream_id: str, version: int) -> list[RecordedEvent]:
    """A stream's events before ``version``, in order, on the caller's connection."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND version < $2 ORDER BY version", stream_id, version
    )
    return await parse_rows(conn, rows)


async def head_position(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")


MAX_APPENDS_PER_CALL = 200


@dataclass
class _Prepared:
    bodies: list[str]
    recorded_at: datetime
    keys: dict[str, bytes | None]  # the key its bodies were sealed under, if any


@dataclass
class _PendingAppend:
    stream_id: str
    expected_version: int
    events: list[NewEvent]
    # Its bodies, sealed where the stream's policy says: made while it waits in the queue, so appends
    # keep the order they were called in whatever sealing has to look up.
    preparing: asyncio.Task[_Prepared]
    done: asyncio.Future[list[RecordedEvent]]
    prepared: _Prepared | None = None


async def _ready(batch: list[_PendingAppend]) -> list[_PendingAppend]:
    """The appends of ``batch`` whose bodies are made (waiting for them); one whose making failed (the
    database was unreachable for its key, say) gets that failure as its outcome and is left out."""
    outcomes = await asyncio.gather(*(p.preparing for p in batch), return_exceptions=True)
    ready = []
    for pending, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            _settle(pending.done, exception=outcome)
        else:
            pending.prepared = outcome
            ready.append(pending)
    return ready


def _settle(
    future: asyncio.Future[list[RecordedEvent]],
    *,
    result: list[RecordedEvent] | None = None,
    exception: BaseException | None = None,
) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result or [])


class EventStore:
    """Event store over an asyncpg pool. Safe to share between tasks of one event loop.

    Concurrent appends through one store are committed together (group commit):
    each keeps its own outcome, and a failing one does not fail the others.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.pool = pool  # for callers that need the same database (tests, tools)
        self._queue: list[_PendingAppend] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sealer = Sealer()

    async def append(self, stream_id: str, expected_version: int, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Append ``events`` to ``stream_id`` whose head must be ``expected_version``.

        Returns the recorded events. Raises ``ConcurrencyConflict`` when the head
        differs (and the ids are not already stored) and ``ValueError`` for a batch
        that is not a consecutive run of versions of this stream.
        """
        if not events:
            return []
        check_batch(stream_id, expected_version, events)
        started = time.perf_counter()
        pending = _PendingAppend(
            stream_id=stream_id,
            expected_version=expected_version,
            events=list(events),
            preparing=asyncio.create_task(self._prepare(stream_id, list(events))),
            done=asyncio.get_running_loop().create_future(),
        )
        # A caller that gives up (a cancelled activity) leaves the outcome unread; reading it
        # here keeps asyncio from reporting "exception was never retrieved".
        pending.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller that gives up does not cancel the batch its append rides in.
        with tracing.span("event_store.append", {"stream_id": stream_id, "events": len(events)}):
            recorded = await asyncio.shield(pending.done)
        metrics.record_append(time.perf_counter() - started)
        return recorded

    async def _prepare(self, stream_id: str, events: list[NewEvent]) -> _Prepared:
        sealing = await self._sealer.sealing_for(self._pool, stream_id, events)
        # recorded_at is part of the hashed body, so it is stamped here, just
        # before the append goes in the next round trip (0004).
        recorded_at = datetime.now(UTC)
        return _Prepared(
            bodies=[body_for(e, recorded_at, sealing.seal if sealing else None) for e in events],
            recorded_at=recorded_at,
            keys={sealing.key_id: sealing.key} if sealing else {},
        )

    async def _flush(self) -> None:
        """Group commit: send everything queued in one call; what queues meanwhile goes in the next."""
        while self._queue:
            batch, self._queue = self._queue[:MAX_APPENDS_PER_CALL], self._queue[MAX_APPENDS_PER_CALL:]
            try:
                batch = await _ready(batch)
                if not batch:
                    continue
                metrics.record_append_batch(len(batch))
                rows = await self._append_batch(batch)
            except BaseException as exc:
                for pending in batch:
                    _settle(pending.done, exception=exc)
                if isinstance(exc, asyncio.CancelledError):
                    for pending in self._queue:
                        _settle(pending.done, exception=exc)
                    self._queue = []
                    raise
                continue
            by_request: dict[int, list[asyncpg.Record]] = {}
            for row in rows:
                by_request.setdefault(row["out_request"], []).append(row)
            # The keys the stored rows name: known for what this batch sealed; read only for what it did not
            # (a re-sent append answered with rows stored earlier).
            keys: dict[str, bytes | None] = {k: v for p in batch if p.prepared for k, v in p.prepared.keys.items()}
            try:
                missing = key_ids_in(r["out_body"] for r in rows if r["out_body"] is not None) - keys.keys()
                keys |= await fetch_keys(self._pool, missing)
            except BaseException as exc:  # the appends are stored; their callers retry and read them back
                for pending in batch:
                    _settle(pending.done, exception=exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for number, pending in enumerate(batch, start=1):
                try:
                    result = self._outcome(pending, by_request.get(number, []), keys)
                except Exception as exc:  # noqa: BLE001 - every append must get its own outcome
                    _settle(pending.done, exception=exc)
                else:
                    _settle(pending.done, result=result)

    async def _append_batch(self, batch: list[_PendingAppend]) -> list[asyncpg.Record]:
        ready = [p.prepared for p in batch if p.prepared is not None]
        assert len(ready) == len(batch)  # _flush sends prepared appends only
        async with self._pool.acquire() as conn:
            return await conn.fetch(
                "SELECT * FROM append_batch($1, $2, $3, $4, $5, $6, $7)",
                [p.stream_id for p in batch],
                [p.expected_version for p in batch],
                [len(p.events) for p in batch],
                [p.recorded_at for p in ready],
                [e.event_id for p in batch for e in p.events],
                [e.type for p in batch for e in p.events],
                [body for p in ready for body in p.bodies],
            )

    def _outcome(
        self, pending: _PendingAppend, rows: list[asyncpg.Record], keys: Mapping[str, bytes | None]
    ) -> list[RecordedEvent]:
        for row in rows:
            if row["out_outcome"] == "conflict":
                raise ConcurrencyConflict(row["out_detail"])
            if row["out_outcome"] == "error":
                raise EventStoreError(f"the append to {pending.stream_id} was refused: {row['out_detail']}")
        stored = [{column: row[f"out_{column}"] for column in _RECORD_COLUMNS} for row in rows]
        return self._whole_batch(pending.stream_id, pending.events, stored, keys, pending.prepared)

    @staticmethod
    def _whole_batch(
        stream_id: str,
        events: Sequence[NewEvent],
        rows: Sequence[Mapping[str, Any]],
        keys: Mapping[str, bytes | None],
        prepared: _Prepared | None = None,
    ) -> list[RecordedEvent]:
        """The stored rows of exactly this batch, in version order, or ConcurrencyConflict.

        The rows are either the ones just inserted or, for a re-append, the ones
        already stored under these ids; both must be this batch, whole. A row holding the very body this
        append made of its event is that event (``recorded_as_made``); any other (stored earlier) is parsed.
        """
        stored = {r["event_id"]: r for r in rows}
        for event in events:
            row = stored.get(event.event_id)
            if row is None or row["stream_id"] != stream_id or row["version"] != event.version:
                raise ConcurrencyConflict(
                    f'event store rule "idempotent append": event {event.event_id} does not match what is stored '
                    f"(a batch must be re-appended whole, at the same stream and versions)"
                )
        made = prepared.bodies if prepared is not None else [None] * len(events)
        return [
            recorded_as_made(event, row, prepared.recorded_at)
            if prepared is not None and row["body"] == body
            else parse_row(row, keys)
            for event, body in zip(events, made, strict=True)
            for row in (stored[event.event_id],)
        ]

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version",
                stream_id,
                from_version,
            )
            return await parse_rows(conn, rows)

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events with ``position > after_position`` in position order (see module doc)."""
        async with self._pool.acquire() as conn:
            return await fetch_after(conn, after_position, limit)

    async def read_stored(self, stream_id: str) -> list[StoredRow]:
        """The stream's rows as stored, in version order, without parsing them (exports, verification)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT position, stream_id, version, body, prev_hash, hash FROM events WHERE stream_id = $1 "
                "ORDER BY version",
                stream_id,
            )
        return [StoredRow(**dict(r)) for r in rows]

    async def stream_length(self, stream_id: str) -> int:
        """How many events the stream holds (0: no such stream), without parsing any."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream_id)

    async def stream_ids(self) -> list[str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT DISTINCT stream_id FROM events ORDER BY stream_id")
        return [r["stream_id"] for r in rows]

    async def verify_stream(self, stream_id: str) -> ChainBreak | None:
        """Recompute the stream's chain from the stored bytes; return the first broken link."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT position, version, body, prev_hash, hash FROM events WHERE stream_id = $1 ORDER BY version",
                stream_id,
            )
        expected_prev = ZERO_HASH
        for expected_version, row in enumerate(rows, start=1):
            reason = link_problem(
                row["version"], row["body"], row["prev_hash"], row["hash"], expected_version, expected_prev
            )
            if reason:
                return ChainBreak(stream_id, row["version"], row["position"], reason)
            expected_prev = row["hash"]
        return None
