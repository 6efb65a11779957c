"""What the PostgreSQL store adds to the port's contract (tests/test_event_store_contract.py): the database
itself refuses gaps and changes, migrations are idempotent, concurrent writers never make a reader skip, and
overlapping appends commit together."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from events.migrate import apply_migrations
from events.store import ZERO_HASH, ConcurrencyConflict, EventStore
from tests.factories import note_events, unique_case_id


async def test_the_database_refuses_a_gap_even_from_raw_sql(store: EventStore, pool: asyncpg.Pool) -> None:
    stream = unique_case_id("stream")
    await store.append(stream, 0, note_events(stream, 1))
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="gapless versions"):
            await conn.execute(
                """INSERT INTO events (stream_id, version, event_id, event_type, body, prev_hash, hash, recorded_at)
                   VALUES ($1, 3, gen_random_uuid(), 'x', '{}', $2, $2, now())""",
                stream,
                ZERO_HASH,
            )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET body = '{}' WHERE stream_id = $1",
        "DELETE FROM events WHERE stream_id = $1",
    ],
)
async def test_the_database_refuses_to_alter_events(store: EventStore, pool: asyncpg.Pool, statement: str) -> None:
    stream = unique_case_id("stream")
    await store.append(stream, 0, note_events(stream, 1))
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable events"):
            await conn.execute(statement, stream)
    assert await store.verify_stream(stream) is None


async def test_the_database_refuses_truncate(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable events"):
            await conn.execute("TRUNCATE events")


async def test_migrations_are_idempotent(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await apply_migrations(conn) == []
        numbers = [r["number"] for r in await conn.fetch("SELECT number FROM schema_migrations ORDER BY number")]
    assert numbers[0] == 1 and numbers == sorted(set(numbers))


async def test_read_all_never_skips_an_event_committed_late_by_a_concurrent_writer(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    """16 writers append while a reader follows positions; the reader must see every event once.

    Each writer has a store of its own, so their transactions really overlap
    (one store would send them together, as one transaction).
    """
    writers, batches, per_batch = 16, 15, 2
    streams = [unique_case_id("concurrent") for _ in range(writers)]
    start = (await store.read_all(0, limit=1_000_000) or [None])[-1]
    start_position = start.position if start else 0
    expected = writers * batches * per_batch
    seen: list = []
    done = asyncio.Event()

    async def write(stream: str) -> None:
        own = EventStore(pool)
        for b in range(batches):
            await own.append(stream, b * per_batch, note_events(stream, per_batch, start_version=b * per_batch + 1))

    async def follow() -> None:
        cursor = start_position
        while True:
            finished = done.is_set()
            page = await store.read_all(cursor, limit=50)
            if page:
                cursor = page[-1].position
            seen.extend(e for e in page if e.stream_id in streams)
            if finished and not page:
                return
            await asyncio.sleep(0)

    reader = asyncio.create_task(follow())
    await asyncio.gather(*(write(s) for s in streams))
    done.set()
    await asyncio.wait_for(reader, 60)
    ids = [e.event_id for e in seen]
    assert len(ids) == len(set(ids)) == expected
    positions = [e.position for e in seen]
    assert positions == sorted(positions)


async def test_overlapping_appends_commit_together_and_each_keeps_its_own_outcome(store: EventStore) -> None:
    streams = [unique_case_id("group") for _ in range(5)]
    await store.append(streams[0], 0, note_events(streams[0], 1))
    calls: list[int] = []
    send = store._append_batch  # noqa: SLF001 - observing the group commit

    async def counted(batch):  # noqa: ANN001, ANN202
        calls.append(len(batch))
        return await send(batch)

    store._append_batch = counted  # type: ignore[method-assign]  # noqa: SLF001
    results = await asyncio.gather(
        *(store.append(s, 0, note_events(s, 2)) for s in streams),  # streams[0] is at version 1: a conflict
        store.append(streams[1], 2, note_events(streams[1], 1, start_version=3)),  # continues streams[1]
        return_exceptions=True,
    )
    assert isinstance(results[0], ConcurrencyConflict), results[0]
    assert [len(r) for r in results[1:]] == [2, 2, 2, 2, 1]
    assert [e.version for e in await store.read_stream(streams[1])] == [1, 2, 3]
    assert calls == [6]  # one round trip (one transaction) for all six
    for stream in streams:
        assert await store.verify_stream(stream) is None


def test_case_event_ids_name_a_position_in_a_stream() -> None:
    from workflows.core.events import case_event_id

    assert case_event_id("escalation-a", 1) == case_event_id("escalation-a", 1)
    ids = {case_event_id(stream, version) for stream in ("escalation-a", "escalation-b") for version in range(1, 50)}
    assert len(ids) == 98
