"""The event store as a port: what the rest of the system may ask of any event store.

``events.store.EventStore`` (PostgreSQL) and ``events.memory.InMemoryEventStore`` implement it; one
contract suite (``tests/test_event_store_contract.py``) runs against both, so code written against the
port behaves alike on either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from events.records import ChainBreak, StoredRow
from workflows.core.events import NewEvent, RecordedEvent


class EventStorePort(Protocol):
    async def append(self, stream_id: str, expected_version: int, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Append ``events`` (versions ``expected_version + 1`` on) atomically, or not at all.

        Re-appending stored event ids returns the stored events (a no-op). A stream not at
        ``expected_version`` raises ``ConcurrencyConflict``; a batch that does not continue the
        stream raises ``ValueError``.
        """
        ...

    async def read_stream(self, stream_id: str, from_version: int = 1) -> list[RecordedEvent]:
        """The stream's events from ``from_version``, in version order (``CorruptEvent`` for damaged bytes)."""
        ...

    async def read_all(self, after_position: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events after ``after_position`` in position order; never skips one committed late."""
        ...

    async def read_stored(self, stream_id: str) -> list[StoredRow]:
        """The stream's rows exactly as stored, unparsed."""
        ...

    async def stream_length(self, stream_id: str) -> int: ...

    async def stream_ids(self) -> list[str]: ...

    async def verify_stream(self, stream_id: str) -> ChainBreak | None:
        """Recompute the stream's hash chain from the stored bytes; the first broken link, or None."""
        ...
