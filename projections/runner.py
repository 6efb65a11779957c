"""The projector: feeds stored events to named projections, exactly once each.

Contract (invariant 4):
* Each projection has a checkpoint row. A batch locks that row (``FOR UPDATE``),
  reads the events after it in position order, applies them, and advances the
  checkpoint, all in one transaction: a crash rolls back both, a second
  projector instance waits on the row lock and then starts after the batch.
* Appends are serialised in the event store, so position order never skips an
  event committed late.
* It wakes on ``LISTEN escalation_events`` and also polls, so a lost
  notification only delays.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

import asyncpg
import structlog

from events.models import CASE_STREAM_PREFIX, RecordedEvent
from events.store import NOTIFY_CHANNEL, fetch_after

log = structlog.get_logger("escalations.projector")


class Projection(ABC):
    """A read model fed by events. Subclasses name their tables and apply batches.

    ``apply`` must be deterministic in the events alone (no clock, no other
    projection's tables) so a rebuild reproduces every row.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    rebuildable: ClassVar[bool] = True
    # Columns that a rebuild must reproduce, where not every column is derived from events.
    derived_columns: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, table_names: Mapping[str, str] | None = None) -> None:
        names = dict(table_names or {})
        self.t = {table: names.get(table, table) for table in self.tables}

    @abstractmethod
    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Apply ``events`` (position order) inside the caller's transaction."""

    async def apply_relevant(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Apply the case events among ``events``; other streams are not this read model's business."""
        relevant = [e for e in events if e.stream_id.startswith(CASE_STREAM_PREFIX)]
        if relevant:
            await self.apply(conn, relevant)


class Projector:
    def __init__(
        self,
        pool: asyncpg.Pool,
        projections: Sequence[Projection],
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self._pool = pool
        self._projections = list(projections)
        self._batch_size = batch_size
        self._poll_interval = poll_interval

    async def step(self, projection: Projection) -> int:
        """Apply one batch to ``projection``; return how many events it held."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING", projection.name
            )
            position = await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", projection.name
            )
            events = await fetch_after(conn, position, self._batch_size)
            if not events:
                return 0
            await projection.apply_relevant(conn, events)
            await conn.execute(
                "UPDATE projection_checkpoints SET position = $2 WHERE name = $1", projection.name, events[-1].position
            )
        return len(events)

    async def catch_up(self) -> int:
        """Apply everything stored so far to every projection; return events applied."""
        total = 0
        for projection in self._projections:
            while applied := await self.step(projection):
                total += applied
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Catch up, then follow new events until ``stop`` is set."""
        wake = asyncio.Event()

        def on_notify(*_: object) -> None:
            wake.set()

        listener: asyncpg.Connection = await self._pool.acquire()
        await listener.add_listener(NOTIFY_CHANNEL, on_notify)
        log.info("projector started", projections=[p.name for p in self._projections])
        try:
            while not stop.is_set():
                wake.clear()
                applied = await self.catch_up()
                if applied:
                    log.debug("projected", events=applied)
                waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
                await asyncio.wait(waiters, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
        finally:
            await listener.remove_listener(NOTIFY_CHANNEL, on_notify)
            await self._pool.release(listener)
            log.info("projector stopped")


async def checkpoint(conn: asyncpg.Connection, name: str) -> int:
    position = await conn.fetchval("SELECT position FROM projection_checkpoints WHERE name = $1", name)
    return position or 0
