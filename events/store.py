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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from events.canonical import canonical_json
from events.models import NewEvent, RecordedEvent

ZERO_HASH = "0" * 64
NOTIFY_CHANNEL = "escalation_events"

# One lock for all appends. Taking it for the length of the append transaction
# means a position is allocated only after every earlier append has committed,
# so positions become visible in order and a reader following them cannot skip
# an event (invariant 4). It costs write parallelism, which bench/ measures.
_APPEND_LOCK_KEY = 0x6573_635F_6170_7064  # "esc_appd"


class EventStoreError(Exception):
    """Base class for refusals by the event store; the message names the rule."""


class ConcurrencyConflict(EventStoreError):
    """The stream is not at the expected version, or an event id is reused elsewhere."""


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + body.encode("ascii")).hexdigest()


def _body_for(event: NewEvent, recorded_at: datetime) -> str:
    content = event.model_dump(mode="json")
    content["recorded_at"] = recorded_at.isoformat()
    return canonical_json(content)


def _from_row(row: asyncpg.Record) -> RecordedEvent:
    content = json.loads(row["body"])
    content.update(position=row["position"], prev_hash=row["prev_hash"], hash=row["hash"])
    return RecordedEvent.model_validate(content)


@dataclass(frozen=True)
class ChainBreak:
    stream_id: str
    version: int
    position: int
    reason: str


_COLUMNS = "position, stream_id, version, event_id, body, prev_hash, hash"


async def fetch_after(conn: asyncpg.Connection, after_position: int, limit: int) -> list[RecordedEvent]:
    """Events with ``position > after_position`` in position order, on the caller's connection."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2", after_position, limit
    )
    return [_from_row(r) for r in rows]


async def head_position(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")


def link_problem(
    version: int, body: str, prev_hash: str, stored_hash: str, expected_version: int, expected_prev: str
) -> str | None:
    """Why a stored event does not continue its chain, or None when it does."""
    if version != expected_version:
        return f"gap: expected version {expected_version}"
    if prev_hash != expected_prev:
        return "prev_hash is not the previous hash"
    if chain_hash(prev_hash, body) != stored_hash:
        return "hash does not match the stored bytes"
    return None


class EventStore:
    """Event store over an asyncpg pool. Safe to share between tasks."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(self, stream_id: str, expected_version: int, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Append ``events`` to ``stream_id`` whose head must be ``expected_version``.

        Returns the recorded events. Raises ``ConcurrencyConflict`` when the head
        differs (and the ids are not already stored) and ``ValueError`` for a batch
        that is not a consecutive run of versions of this stream.
        """
        if not events:
            return []
        for offset, event in enumerate(events):
            if event.stream_id != stream_id:
                raise ValueError(f"event {event.event_id} belongs to {event.stream_id}, not {stream_id}")
            if event.version != expected_version + 1 + offset:
                raise ValueError(
                    f"event {event.event_id} has version {event.version}; "
                    f"expected {expected_version + 1 + offset} (batch must continue the stream)"
                )
        ids = [e.event_id for e in events]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK_KEY)
            existing = await conn.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE event_id = ANY($1::uuid[]) ORDER BY position", ids
            )
            if existing:
                return self._idempotent_replay(stream_id, events, existing)
            head = await conn.fetchrow(
                "SELECT version, hash FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1", stream_id
            )
            head_version, prev_hash = (head["version"], head["hash"]) if head else (0, ZERO_HASH)
            if head_version != expected_version:
                raise ConcurrencyConflict(
                    f'event store rule "expected version": stream {stream_id} is at version {head_version}, '
                    f"the append expected {expected_version}"
                )
            recorded_at = datetime.now(UTC)
            bodies, hashes, prevs = [], [], []
            for event in events:
                body = _body_for(event, recorded_at)
                prevs.append(prev_hash)
                prev_hash = chain_hash(prev_hash, body)
                bodies.append(body)
                hashes.append(prev_hash)
            rows = await conn.fetch(
                f"""INSERT INTO events (stream_id, version, event_id, event_type, body, prev_hash, hash, recorded_at)
                    SELECT $1, v, id, t, b, p, h, $8
                      FROM unnest($2::int[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[])
                           AS x(v, id, t, b, p, h)
                     ORDER BY v
                 RETURNING {_COLUMNS}""",
                stream_id,
                [e.version for e in events],
                ids,
                [e.type for e in events],
                bodies,
                prevs,
                hashes,
                recorded_at,
            )
            await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(max(r["position"] for r in rows)))
        return sorted((_from_row(r) for r in rows), key=lambda e: e.version)

    @staticmethod
    def _idempotent_replay(
        stream_id: str, events: Sequence[NewEvent], existing: Sequence[asyncpg.Record]
    ) -> list[RecordedEvent]:
        stored = {r["event_id"]: r for r in existing}
        for event in events:
            row = stored.get(event.event_id)
            if row is None or row["stream_id"] != stream_id or row["version"] != event.version:
                raise ConcurrencyConflict(
                    f'event store rule "idempotent append": event {event.event_id} does not match what is stored '
                    f"(a batch must be re-appended whole, at the same stream and versions)"
                )
        return [_from_row(stored[e.event_id]) for e in events]

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version",
                stream_id,
                from_version,
            )
        return [_from_row(r) for r in rows]

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events with ``position > after_position`` in position order (see module doc)."""
        async with self._pool.acquire() as conn:
            return await fetch_after(conn, after_position, limit)

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
