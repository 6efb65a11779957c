"""Projections: exactly-once application, rebuild equality, and the case list's content."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from events.store import EventStore
from projections import PROJECTIONS, all_projections
from projections.rebuild import rebuild
from projections.runner import Projector
from samples.histories import append_history, generate_case
from tests.factories import note_events, unique_case_id
from tests.projection_support import differences_from_rebuild
from workflows.core.decide import next_deadline
from workflows.core.events import stream_id_for
from workflows.core.evolve import fold


async def test_projected_case_rows_equal_the_fold_of_each_stream(own_pool: asyncpg.Pool) -> None:
    store = EventStore(own_pool)
    rng = random.Random(7)
    histories = [generate_case(rng, i) for i in range(60)]
    await append_history(store, histories)
    await Projector(own_pool, all_projections(), batch_size=97).catch_up()
    async with own_pool.acquire() as conn:
        rows = {r["case_id"]: r for r in await conn.fetch("SELECT * FROM case_list")}
        trail = await conn.fetchval("SELECT count(*) FROM audit_trail")
    assert len(rows) == 60 and trail == sum(len(h) for h in histories)
    for history in histories:
        state = fold(history)
        row = rows[state.case_id]
        assert (row["status"], row["priority"], row["level"], row["owner"]) == (
            state.status.value,
            state.priority.value,
            state.level,
            state.owner,
        )
        assert row["version"] == state.version and row["handoffs"] == state.handoffs
        deadline = next_deadline(state)
        assert row["next_deadline_at"] == (deadline[0] if deadline else None)
        assert row["breached"] == bool(state.breaches)


async def test_read_models_equal_a_fresh_rebuild_and_a_swap_changes_nothing(own_pool: asyncpg.Pool) -> None:
    store = EventStore(own_pool)
    rng = random.Random(11)
    await append_history(store, [generate_case(rng, i) for i in range(40)])
    await Projector(own_pool, all_projections(), batch_size=50).catch_up()
    assert await differences_from_rebuild(own_pool) == []
    diffs = await rebuild(own_pool, PROJECTIONS["case_list"], swap=True)
    assert all(d.identical for d in diffs) and diffs[0].rows_after == 40
    # The projector carries on, on the swapped-in tables.
    await append_history(store, [generate_case(rng, 100)])
    await Projector(own_pool, all_projections()).catch_up()
    async with own_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM case_list") == 41


async def test_the_outbox_is_never_rebuilt(own_pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="never rebuilt"):
        await rebuild(own_pool, PROJECTIONS["notifications"], swap=True)


async def test_the_projector_never_skips_an_event_appended_concurrently(own_pool: asyncpg.Pool) -> None:
    """16 writers append while two projector instances follow; every event is projected exactly once."""
    store = EventStore(own_pool)
    streams = [stream_id_for(unique_case_id("conc")) for _ in range(16)]
    stop = asyncio.Event()
    projectors = [
        asyncio.create_task(
            Projector(own_pool, [PROJECTIONS["audit_trail"]()], batch_size=7, poll_interval=0.01).run(stop)
        )
        for _ in range(2)
    ]

    async def write(stream: str) -> None:
        for batch in range(20):
            await store.append(stream, batch * 2, note_events(stream, 2, start_version=batch * 2 + 1))

    await asyncio.gather(*(write(s) for s in streams))
    total = 16 * 20 * 2
    async with own_pool.acquire() as conn:
        for _ in range(400):
            if await conn.fetchval("SELECT count(*) FROM audit_trail") >= total:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*projectors)
        positions = [r["position"] for r in await conn.fetch("SELECT position FROM audit_trail ORDER BY position")]
        stored = [r["position"] for r in await conn.fetch("SELECT position FROM events ORDER BY position")]
    assert positions == stored and len(positions) == total


async def test_case_list_answers_the_operations_queries(own_pool: asyncpg.Pool) -> None:
    store = EventStore(own_pool)
    rng = random.Random(3)
    histories = [generate_case(rng, i, customers=5) for i in range(30)]
    await append_history(store, histories)
    await Projector(own_pool, all_projections()).catch_up()
    async with own_pool.acquire() as conn:
        open_by_deadline = await conn.fetch(
            "SELECT case_id, next_deadline_at FROM case_list WHERE status IN ('open','in_progress','resolution_proposed') "
            "ORDER BY next_deadline_at"
        )
        by_customer = await conn.fetchval("SELECT count(*) FROM case_list WHERE customer_id = 'cust-1'")
        breached = await conn.fetchval("SELECT count(*) FROM case_list WHERE breached")
        plan = await conn.fetchval("EXPLAIN SELECT * FROM case_list WHERE customer_id = 'cust-1' ORDER BY opened_at")
    states = [fold(h) for h in histories]
    assert by_customer == sum(1 for s in states if s.customer.id == "cust-1")
    assert breached == sum(1 for s in states if s.breaches)
    deadlines = [r["next_deadline_at"] for r in open_by_deadline]
    assert deadlines == sorted(deadlines)
    assert "case_list" in plan


async def test_events_of_other_streams_are_passed_over_not_fatal(own_pool: asyncpg.Pool) -> None:
    store = EventStore(own_pool)
    other = unique_case_id("not-a-case")  # e.g. a stream some future feature writes
    await store.append(other, 0, note_events(other, 3))
    await append_history(store, [generate_case(random.Random(8), 0)])
    await Projector(own_pool, all_projections()).catch_up()
    async with own_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM case_list") == 1
        head = await conn.fetchval("SELECT max(position) FROM events")
        assert {r["position"] for r in await conn.fetch("SELECT position FROM projection_checkpoints")} == {head}
