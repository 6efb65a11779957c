"""Projections: exactly-once application, rebuild equality, and the case list's content."""

from __future__ import annotations

import asyncio
import json
import random

import asyncpg
import pytest

from events.migrate import available_migrations
from events.store import EventStore
from projections import PROJECTIONS, all_projections
from projections.case_list import CaseListProjection
from projections.rebuild import rebuild
from projections.runner import Projector
from samples.histories import append_history, generate_case
from tests.eventually import assert_eventually
from tests.factories import note_events, unique_case_id
from tests.projection_support import differences_from_rebuild
from workflows.core.decide import next_deadline
from workflows.core.events import stream_id_for
from workflows.core.evolve import fold
from workflows.core.policy import Policy


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


async def test_the_case_list_keeps_each_policy_once_and_reads_folds_written_before_that(
    own_pool: asyncpg.Pool,
) -> None:
    """A fold is kept without its policy, which it names by hash; ``case_list_policies`` keeps each policy once.
    Folds written before migration 0021 (the policy inline) get their policies copied by it, are read as they
    are by a projector that has read no policy yet, and are rewritten without the policy; the copies (as
    PostgreSQL renders them, not canonical) serve the next projector that reads those folds."""
    store = EventStore(own_pool)
    rng = random.Random(23)
    histories = [generate_case(rng, i) for i in range(30)]
    thirds = [(max(1, len(h) // 3), max(1, 2 * len(h) // 3)) for h in histories]
    for history, (first, _) in zip(histories, thirds, strict=True):
        await store.append(history[0].stream_id, 0, history[:first])
    await Projector(own_pool, [CaseListProjection()], batch_size=37).catch_up()
    async with own_pool.acquire() as conn:
        folds = [json.loads(r["state"]) for r in await conn.fetch("SELECT state FROM case_list_folds")]
        kept = {r["content_hash"]: r["content"] for r in await conn.fetch("SELECT * FROM case_list_policies")}
    assert len(folds) == 30 and not any("policy" in f for f in folds)
    assert {f["policy_hash"] for f in folds} == kept.keys()
    assert all(Policy.model_validate_json(content).content_hash() == h for h, content in kept.items())

    # The database as migration 0020 left it: every fold with its policy inline, no policy kept apart.
    async with own_pool.acquire() as conn:
        await conn.executemany(
            "UPDATE case_list_folds SET state = $2 WHERE stream_id = $1",
            [
                (h[0].stream_id, fold(h[:first]).model_dump_json())
                for h, (first, _) in zip(histories, thirds, strict=True)
            ],
        )
        await conn.execute("DELETE FROM case_list_policies")
        migration = next(m for m in available_migrations() if m.number == 21)
        await conn.execute(migration.sql[migration.sql.index("INSERT INTO") :])
        copied = {r["content_hash"]: r["content"] for r in await conn.fetch("SELECT * FROM case_list_policies")}
    assert copied.keys() == kept.keys() and all(copied[h] != kept[h] for h in kept)  # PostgreSQL's rendering

    for history, (first, second) in zip(histories, thirds, strict=True):  # read as written before 0021
        if first < second:
            await store.append(history[0].stream_id, first, history[first:second])
    await Projector(own_pool, [CaseListProjection()], batch_size=37).catch_up()  # a new process's projection
    for history, (_, second) in zip(histories, thirds, strict=True):  # read through the copied policies
        if second < len(history):
            await store.append(history[0].stream_id, second, history[second:])
    await Projector(own_pool, [CaseListProjection()], batch_size=37).catch_up()  # and another's
    assert all(d.identical for d in await rebuild(own_pool, CaseListProjection, swap=False))
    async with own_pool.acquire() as conn:
        folds = [json.loads(r["state"]) for r in await conn.fetch("SELECT state FROM case_list_folds")]
        rows = {r["case_id"]: r for r in await conn.fetch("SELECT case_id, version, status FROM case_list")}
        assert {r["content_hash"]: r["content"] for r in await conn.fetch("SELECT * FROM case_list_policies")} == copied
    assert not any("policy" in f for f in folds)
    for history in histories:
        state = fold(history)
        assert (rows[state.case_id]["version"], rows[state.case_id]["status"]) == (state.version, state.status.value)


async def test_a_fold_whose_policy_is_not_kept_stops_the_case_list_by_name_and_nothing_else(
    own_pool: asyncpg.Pool,
) -> None:
    store = EventStore(own_pool)
    history = generate_case(random.Random(5), 0)
    await store.append(history[0].stream_id, 0, history[:1])
    await Projector(own_pool, all_projections()).catch_up()
    async with own_pool.acquire() as conn:
        await conn.execute("DELETE FROM case_list_policies")
    await store.append(history[0].stream_id, 1, history[1:2])
    stop = asyncio.Event()
    projector = Projector(own_pool, all_projections(), poll_interval=0.05)  # a new process: no policy read yet
    running = asyncio.create_task(projector.run(stop))
    try:
        fault = await assert_eventually(
            lambda: own_pool.fetchrow("SELECT name, error FROM projection_faults"), lambda row: row is not None
        )
    finally:
        stop.set()
        await running
    assert fault["name"] == "case_list" and f"lacks the policies ['{history[0].data.policy_hash}']" in fault["error"]
    assert set(projector.stopped) == {"case_list"}
    async with own_pool.acquire() as conn:  # the others went on to the head
        trail = await conn.fetchval("SELECT count(*) FROM audit_trail")
    assert trail == 2


async def test_a_case_whose_policy_is_not_what_its_opening_names_keeps_it_in_its_fold(
    own_pool: asyncpg.Pool,
) -> None:
    """A damaged opening (its policy does not hash to the hash it names) never files a policy under that hash:
    its fold keeps the policy it was opened with, and is continued from it."""
    store = EventStore(own_pool)
    history = generate_case(random.Random(6), 0)
    claimed = "f" * 64
    opening = history[0].model_copy(update={"data": history[0].data.model_copy(update={"policy_hash": claimed})})
    await store.append(opening.stream_id, 0, [opening])
    await Projector(own_pool, [CaseListProjection()]).catch_up()
    await store.append(opening.stream_id, 1, history[1:])
    await Projector(own_pool, [CaseListProjection()]).catch_up()  # a new process's projection
    async with own_pool.acquire() as conn:
        kept = await conn.fetchval("SELECT count(*) FROM case_list_policies WHERE content_hash = $1", claimed)
        state = json.loads(await conn.fetchval("SELECT state FROM case_list_folds"))
        version = await conn.fetchval("SELECT version FROM case_list")
    assert kept == 0 and state["policy_hash"] == claimed and "policy" in state and version == len(history)
