"""What the read models say, sampled for Prometheus: projection lag, stopped projections, dead letters and
open cases (``observability.metrics``). Runs in the projector's process; reads only, never writes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from events.transparency_log import log_size
from observability import metrics
from projections.log_keeper import FAULT_NAME as LOG_NAME
from projections.periodic import every_until_stopped
from projections.runner import projection_faults
from projections.watchdog import DEFAULT_MARGIN, count_overdue, margin_from_env

# Lag is counted up to this many events: beyond it the number matters less than the alert it raises.
LAG_COUNT_CAP = 1_000_000


async def sample(conn: asyncpg.Connection, projections: Sequence[str], margin: timedelta = DEFAULT_MARGIN) -> None:
    """Set every read-model gauge from one look at the database (``margin``: the deadline watchdog's)."""
    checkpoints = {
        r["name"]: r["position"] for r in await conn.fetch("SELECT name, position FROM projection_checkpoints")
    }
    _size, log_position = await log_size(conn)
    checkpoints[LOG_NAME] = log_position
    now = datetime.now(UTC)
    names = [*projections, LOG_NAME]
    lag_events: list[tuple[Sequence[str], float]] = []
    lag_seconds: list[tuple[Sequence[str], float]] = []
    for name in names:
        position = checkpoints.get(name, 0)
        behind = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE position > $1 LIMIT $2) AS behind",
            position,
            LAG_COUNT_CAP,
        )
        oldest = await conn.fetchval(
            "SELECT recorded_at FROM events WHERE position > $1 ORDER BY position LIMIT 1", position
        )
        lag_events.append(((name,), behind))
        lag_seconds.append(((name,), max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0))
    metrics.set_labelled(metrics.PROJECTION_LAG_EVENTS, lag_events)
    metrics.set_labelled(metrics.PROJECTION_LAG_SECONDS, lag_seconds)
    faults = await projection_faults(conn)
    metrics.set_labelled(metrics.PROJECTION_STOPPED, [((name,), 1.0 if name in faults else 0.0) for name in names])
    dead = await conn.fetch("SELECT channel, count(*) AS n FROM deliveries WHERE status = 'dead' GROUP BY channel")
    metrics.set_labelled(metrics.DEAD_LETTERS, [((r["channel"],), r["n"]) for r in dead])
    open_cases = await conn.fetch(
        "SELECT priority, status, level, count(*) AS n FROM case_list "
        "WHERE status NOT IN ('closed', 'withdrawn') GROUP BY priority, status, level"
    )
    metrics.set_labelled(
        metrics.OPEN_CASES, [((r["priority"], r["status"], str(r["level"])), r["n"]) for r in open_cases]
    )
    metrics.OVERDUE_DEADLINES.set(await count_overdue(conn, margin))


async def run_gauges(pool: asyncpg.Pool, projections: Sequence[str], stop: asyncio.Event, every: float = 5.0) -> None:
    """Sample every ``every`` seconds until ``stop``; an unreachable database skips a sample, never ends it."""
    margin = margin_from_env()

    async def one_sample() -> None:
        async with pool.acquire() as conn:
            await sample(conn, projections, margin)

    await every_until_stopped(stop, every, one_sample, "sampling the read-model gauges")
