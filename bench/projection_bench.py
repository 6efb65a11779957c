"""Projection scenarios: lag under steady load, and full-rebuild throughput.

* Lag: events are appended one command at a time at a steady rate while the
  projector runs; for each, the time from the append's commit to the case-list
  row showing its version. Baseline, measured on the same events at the same
  time: the same runner (LISTEN/NOTIFY, checkpoint, transaction) driving a
  one-column upsert, i.e. what our case-list logic costs on top.
* Rebuild: events/s projecting the whole store into fresh case-list tables.
  Baselines: a plain ``SELECT`` scan of the events table, fetched to the client; and reading the events as
  any reader of the record does (``fetch_after``, 2,000 a batch: fetched, parsed and their sealed fields
  opened), which says how much of a rebuild is the case list's own work.
"""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg

from bench.report import Row, percentile
from events.store import EventStore, fetch_after
from projections.case_list import CaseListProjection
from projections.rebuild import rebuild
from projections.runner import Projection, Projector

REBUILD_BATCH = 2000  # events a rebuild reads at a time (rebuild's default)


class TrivialProjection(Projection):
    """The baseline reader: same runner, LISTEN/NOTIFY and checkpointing, but a one-column upsert."""

    name = "bench_trivial"
    tables = ("bench_trivial",)

    async def apply(self, conn: asyncpg.Connection, events) -> None:  # noqa: ANN001
        await conn.executemany(
            "INSERT INTO bench_trivial (stream_id, version) VALUES ($1, $2) "
            "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version",
            [(e.stream_id, e.version) for e in events],
        )


async def projection_lag(pool: asyncpg.Pool, histories: list, rate: float, seconds: float) -> list[Row]:
    store = EventStore(pool)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_trivial (stream_id text PRIMARY KEY, version integer)")
    # Open every case first (not timed), and let both projections catch up.
    for events in histories:
        await store.append(events[0].stream_id, 0, events[:1])
    await Projector(pool, [CaseListProjection(), TrivialProjection()]).catch_up()
    stop = asyncio.Event()
    runners = [
        asyncio.create_task(Projector(pool, [projection], poll_interval=1.0).run(stop))
        for projection in (CaseListProjection(), TrivialProjection())
    ]
    ours_ms: list[float] = []
    base_ms: list[float] = []
    try:
        cursors = {events[0].stream_id: 1 for events in histories}
        rng = random.Random(1)
        deadline = time.perf_counter() + seconds
        interval = 1.0 / rate
        async with pool.acquire() as conn:
            while time.perf_counter() < deadline:
                candidates = [h for h in histories if cursors[h[0].stream_id] < len(h)]
                if not candidates:
                    break
                events = rng.choice(candidates)
                stream, version = events[0].stream_id, cursors[events[0].stream_id]
                await store.append(stream, version, events[version : version + 1])
                committed = time.perf_counter()
                cursors[stream] = version + 1
                seen: dict[str, float] = {}
                while len(seen) < 2:
                    row = await conn.fetchrow(
                        "SELECT (SELECT version FROM case_list WHERE stream_id = $1) AS ours, "
                        "(SELECT version FROM bench_trivial WHERE stream_id = $1) AS base",
                        stream,
                    )
                    now = time.perf_counter()
                    for key in ("ours", "base"):
                        if key not in seen and (row[key] or 0) >= version + 1:
                            seen[key] = now
                    if len(seen) < 2:
                        await asyncio.sleep(0.0002)
                ours_ms.append((seen["ours"] - committed) * 1000)
                base_ms.append((seen["base"] - committed) * 1000)
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - committed)))
    finally:
        stop.set()
        await asyncio.gather(*runners)
    baseline = "same runner, one-column upsert"
    return [
        Row(
            f"projection lag p50 (commit -> case list), {len(ours_ms)} events at {rate:g}/s",
            "ms",
            percentile(ours_ms, 50),
            percentile(base_ms, 50),
            baseline,
        ),
        Row("projection lag p99", "ms", percentile(ours_ms, 99), percentile(base_ms, 99), baseline),
    ]


async def rebuild_throughput(pool: asyncpg.Pool) -> list[Row]:
    """A rebuild of the case list from event zero, against scanning and against fetching and parsing the events.

    The live case list is brought to the head first, as a running projector keeps it: a rebuild also brings
    the live tables to its own position before it compares them, and that catching up is not the rebuild's
    work (before this, the row timed both: the cases ``append_history`` wrote bypass the projector)."""
    await Projector(pool, [CaseListProjection()]).catch_up()
    async with pool.acquire() as conn:
        count = await conn.fetchval("SELECT count(*) FROM events")
        started = time.perf_counter()
        async with conn.transaction():
            async for _ in conn.cursor("SELECT * FROM events ORDER BY position", prefetch=2000):
                pass
        scan = count / (time.perf_counter() - started)
    started = time.perf_counter()
    async with pool.acquire() as conn:
        position = 0
        while events := await fetch_after(conn, position, REBUILD_BATCH):
            position = events[-1].position
    parsed = count / (time.perf_counter() - started)
    started = time.perf_counter()
    await rebuild(pool, CaseListProjection, swap=True, batch_size=REBUILD_BATCH)
    ours = count / (time.perf_counter() - started)
    return [
        Row(
            f"full rebuild of the case list ({count} events)",
            "events/s",
            ours,
            scan,
            "SELECT scan of events",
            higher_is_better=True,
        ),
        Row(
            "full rebuild of the case list, against reading the events",
            "events/s",
            ours,
            parsed,
            "fetch_after: fetch and parse each event",
            higher_is_better=True,
        ),
    ]
