"""An event store in memory, with the PostgreSQL store's contract (``events.port.EventStorePort``).

For tests whose subject is not PostgreSQL: the same bytes, hash chain, idempotent re-append, conflicts
and errors, held in lists. One process, one event loop; nothing survives the object.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from events.records import (
    ZERO_HASH,
    ChainBreak,
    ConcurrencyConflict,
    StoredRow,
    body_for,
    chain_hash,
    check_batch,
    link_problem,
    parse_row,
)
from workflows.core.events import NewEvent, RecordedEvent


class InMemoryEventStore:
    def __init__(self) -> None:
        self._rows: list[StoredRow] = []  # position order; position = index + 1
        self._streams: dict[str, list[StoredRow]] = {}
        self._by_id: dict[str, StoredRow] = {}

    async def append(self, stream_id: str, expected_version: int, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        if not events:
            return []
        check_batch(stream_id, expected_version, events)
        if any(str(e.event_id) in self._by_id for e in events):
            stored = [self._by_id.get(str(e.event_id)) for e in events]
            if any(
                r is None or r.stream_id != stream_id or r.version != e.version
                for r, e in zip(stored, events, strict=True)
            ):
                raise ConcurrencyConflict(
                    f'event store rule "idempotent append": a batch must be re-appended whole, at the same stream '
                    f"and versions ({stream_id} from version {expected_version + 1})"
                )
            return [parse_row(_as_row(r)) for r in stored if r is not None]
        stream = self._streams.setdefault(stream_id, [])
        if len(stream) != expected_version:
            raise ConcurrencyConflict(
                f'event store rule "expected version": stream {stream_id} is at version {len(stream)}, '
                f"the append expected {expected_version}"
            )
        recorded_at = datetime.now(UTC)
        prev = stream[-1].hash if stream else ZERO_HASH
        new = []
        for event in events:
            body = body_for(event, recorded_at)
            row = StoredRow(len(self._rows) + 1, stream_id, event.version, body, prev, chain_hash(prev, body))
            prev = row.hash
            self._rows.append(row)
            stream.append(row)
            self._by_id[str(event.event_id)] = row
            new.append(row)
        return [parse_row(_as_row(r)) for r in new]

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        return [parse_row(_as_row(r)) for r in self._streams.get(stream_id, []) if r.version >= from_version]

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        return [parse_row(_as_row(r)) for r in self._rows[after_position : after_position + limit]]

    async def read_stored(self, stream_id: str) -> list[StoredRow]:
        return list(self._streams.get(stream_id, []))

    async def stream_length(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, []))

    async def stream_ids(self) -> list[str]:
        return sorted(self._streams)

    async def verify_stream(self, stream_id: str) -> ChainBreak | None:
        expected_prev = ZERO_HASH
        for expected_version, row in enumerate(self._streams.get(stream_id, []), start=1):
            reason = link_problem(row.version, row.body, row.prev_hash, row.hash, expected_version, expected_prev)
            if reason:
                return ChainBreak(stream_id, row.version, row.position, reason)
            expected_prev = row.hash
        return None

    def replace_body(self, stream_id: str, version: int, body: str) -> None:
        """Alter one stored event's bytes in place, as a forger would (for tests of tamper detection)."""
        stream = self._streams[stream_id]
        old = stream[version - 1]
        new = StoredRow(old.position, old.stream_id, old.version, body, old.prev_hash, old.hash)
        stream[version - 1] = new
        self._rows[old.position - 1] = new


def _as_row(row: StoredRow) -> dict[str, object]:
    return {
        "position": row.position,
        "stream_id": row.stream_id,
        "version": row.version,
        "body": row.body,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }
