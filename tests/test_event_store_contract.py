"""The event store's contract, run against every implementation of the port: PostgreSQL and memory.

Gapless versions, a hash chain over the exact stored bytes, idempotent re-append, conflicts that
write nothing, position order, and tampering found by verification or reported by a reader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import pytest

from events.memory import InMemoryEventStore
from events.port import EventStorePort
from events.store import ZERO_HASH, ConcurrencyConflict, CorruptEvent, EventStore
from tests.factories import note_events, unique_case_id
from tests.tampering import rewrite_body

Tamper = Callable[[str, int, Callable[[str], str]], Awaitable[None]]


@pytest.fixture(params=["postgresql", "memory"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def any_store(kind: str, request: pytest.FixtureRequest) -> EventStorePort:
    if kind == "memory":
        return InMemoryEventStore()
    # A database of its own: a damaged event left behind must not reach other tests' readers.
    return EventStore(request.getfixturevalue("own_pool"))


@pytest.fixture
def tamper_with(kind: str, any_store: EventStorePort) -> Tamper:
    """Change one stored event's bytes behind the store's back, as only a superuser (or a bug) could."""

    async def change(stream_id: str, version: int, edit: Callable[[str], str]) -> None:
        if isinstance(any_store, EventStore):
            await rewrite_body(any_store.pool, stream_id, version, edit)
        else:
            assert isinstance(any_store, InMemoryEventStore)
            [row] = [r for r in await any_store.read_stored(stream_id) if r.version == version]
            any_store.replace_body(stream_id, version, edit(row.body))

    return change


async def test_append_assigns_gapless_versions_and_a_hash_chain(any_store: EventStorePort) -> None:
    stream = unique_case_id("stream")
    first = await any_store.append(stream, 0, note_events(stream, 2))
    second = await any_store.append(stream, 2, note_events(stream, 3, start_version=3))
    stored = await any_store.read_stream(stream)
    assert [e.version for e in stored] == [1, 2, 3, 4, 5]
    assert [e.event_id for e in stored] == [e.event_id for e in first + second]
    assert stored[0].prev_hash == ZERO_HASH
    for prev, cur in zip(stored, stored[1:], strict=False):
        assert cur.prev_hash == prev.hash
    assert await any_store.verify_stream(stream) is None
    assert await any_store.stream_length(stream) == 5 and stream in await any_store.stream_ids()


async def test_the_hash_covers_the_exact_stored_bytes(any_store: EventStorePort) -> None:
    stream = unique_case_id("stream")
    [event] = await any_store.append(stream, 0, note_events(stream, 1))
    [row] = await any_store.read_stored(stream)
    assert event.hash == row.hash == hashlib.sha256(bytes.fromhex(ZERO_HASH) + row.body.encode("ascii")).hexdigest()


async def test_reappending_the_same_event_ids_is_a_no_op(any_store: EventStorePort) -> None:
    stream = unique_case_id("stream")
    batch = note_events(stream, 2)
    first = await any_store.append(stream, 0, batch)
    again = await any_store.append(stream, 0, batch)
    assert again == first
    assert len(await any_store.read_stream(stream)) == 2


async def test_a_different_event_at_an_existing_version_is_a_conflict(any_store: EventStorePort) -> None:
    stream = unique_case_id("stream")
    await any_store.append(stream, 0, note_events(stream, 1))
    with pytest.raises(ConcurrencyConflict, match="expected version"):
        await any_store.append(stream, 0, note_events(stream, 1, text="other"))
    assert len(await any_store.read_stream(stream)) == 1


async def test_a_batch_that_skips_a_version_is_refused_and_writes_nothing(any_store: EventStorePort) -> None:
    stream = unique_case_id("stream")
    with pytest.raises(ValueError, match="expected 1"):
        await any_store.append(stream, 0, note_events(stream, 1, start_version=2))
    assert await any_store.read_stream(stream) == []


async def test_read_all_returns_events_in_position_order_after_a_position(any_store: EventStorePort) -> None:
    a, b = unique_case_id("a"), unique_case_id("b")
    await any_store.append(a, 0, note_events(a, 1))
    await any_store.append(b, 0, note_events(b, 1))
    await any_store.append(a, 1, note_events(a, 1, start_version=2))
    everything = await any_store.read_all(0, limit=100_000)
    positions = [e.position for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    mine = [(e.stream_id, e.version) for e in everything if e.stream_id in (a, b)]
    assert mine == [(a, 1), (b, 1), (a, 2)]
    after = await any_store.read_all(everything[-2].position)
    assert [e.position for e in after] == [everything[-1].position]


async def test_a_changed_byte_is_a_break_at_its_version(any_store: EventStorePort, tamper_with: Tamper) -> None:
    stream = unique_case_id("stream")
    await any_store.append(stream, 0, note_events(stream, 3))
    await tamper_with(stream, 2, lambda body: body.replace("note 2", "n0te 2"))
    broken = await any_store.verify_stream(stream)
    assert broken is not None and broken.version == 2 and broken.reason == "hash does not match the stored bytes"


async def test_bytes_that_no_longer_parse_are_reported_by_a_reader(
    any_store: EventStorePort, tamper_with: Tamper
) -> None:
    stream = unique_case_id("stream")
    await any_store.append(stream, 0, note_events(stream, 2))
    await tamper_with(stream, 2, lambda body: body.replace('"type":"escalation.note_added"', '"type":"forged"'))
    with pytest.raises(CorruptEvent, match=r"version 2 .* does not parse") as raised:
        await any_store.read_stream(stream)
    assert raised.value.version == 2
    assert len(await any_store.read_stored(stream)) == 2  # the stored bytes can still be exported
    broken = await any_store.verify_stream(stream)
    assert broken is not None and broken.version == 2
