"""The projector: feeds stored events to named projections, exactly once each.

Contract (invariant 4 of docs/architecture.md):
* Each projection has a checkpoint row. A batch locks that row (``FOR UPDATE``),
  reads the events after it in position order, applies them, and advances the
  checkpoint, all in one transaction: a crash rolls back both, a second
  projector instance waits on the row lock and then starts after the batch.
* Appends are serialised in the event store, so position order never skips an
  event committed late.
* It wakes on ``LISTEN escalation_events`` and also polls, so a lost
  notification only delays.
* Several instances may run: one holds each projection's lease (an advisory
  lock) and applies it; the others stand by and take over when it dies.
* A database outage pauses it; it reconnects and resumes from the checkpoints.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

import asyncpg
import structlog

from events.database import DATABASE_UNAVAILABLE
from events.store import NOTIFY_CHANNEL, CorruptEvent, fetch_after
from workflows.core.events import CASE_STREAM_PREFIX, RecordedEvent

log = structlog.get_logger("escalations.projector")


class ProjectionCannotContinue(Exception):
    """A projection cannot apply the batch from ``position`` on: its own working state does not read (the
    message says what and what to do). The projector stops that projection there, as at a corrupt event, says
    so where ``/readyz`` reads it, and goes on with the others."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position


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
    # Tables a rebuild makes afresh and swaps in but does not compare (a cache whose rows depend on batching).
    uncompared_tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, table_names: Mapping[str, str] | None = None) -> None:
        names = dict(table_names or {})
        self.t = {table: names.get(table, table) for table in self.tables}

    @abstractmethod
    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        """Apply ``events`` (position order) inside the caller's transaction."""

    def committed(self) -> None:
        """Called after the transaction of an ``apply`` committed (nothing by default): what must happen only
        once the batch is durable (the outbox hands its new deliveries to the deliverer)."""
        return None

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
        # Projections stopped at an event whose stored bytes no longer parse: name -> the error.
        self.stopped: dict[str, str] = {}

    async def _stop_projection(self, projection: Projection, exc: CorruptEvent | ProjectionCannotContinue) -> None:
        """Stop ``projection`` at the damaged event, and say so where ``/readyz`` reads it.

        The read model stays as it was before the event; the others go on. A restarted projector
        tries again (and stops again, until the record is repaired from a backup)."""
        self.stopped[projection.name] = str(exc)
        log.error("projection stopped at a corrupt event", projection=projection.name, error=str(exc))
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO projection_faults (name, position, error) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, error = EXCLUDED.error, at = now()",
                projection.name,
                exc.position,
                str(exc),
            )

    async def step(self, projection: Projection) -> int:
        """Apply one batch to ``projection``; return how many events it held."""
        async with self._pool.acquire() as conn, conn.transaction():
            position = await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", projection.name
            )
            if position is None:  # the projection's first step (its row is made once, not at every step)
                await conn.execute(
                    "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING", projection.name
                )
                position = await conn.fetchval(
                    "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE", projection.name
                )
            try:
                events = await fetch_after(conn, position, self._batch_size)
            except CorruptEvent as exc:
                # Apply what precedes the damaged event (positions are dense); stop at it.
                if exc.position <= position + 1:
                    raise
                events = await fetch_after(conn, position, exc.position - position - 1)
            if not events:
                return 0
            await projection.apply_relevant(conn, events)
            await conn.execute(
                "UPDATE projection_checkpoints SET position = $2 WHERE name = $1", projection.name, events[-1].position
            )
        projection.committed()
        return len(events)

    async def catch_up(self) -> int:
        """Apply everything stored so far to every projection; return events applied."""
        total = 0
        for projection in self._projections:
            while applied := await self.step(projection):
                total += applied
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Follow new events until ``stop`` is set, through database outages.

        Only the projections whose lease this instance holds are applied (see
        ``_LeaseHolder``); the others are tried again every poll, so when the
        active instance dies a standby takes over within a poll interval. A lost
        database connection drops every lease and retries after a pause.
        """
        log.info("projector started", projections=[p.name for p in self._projections])
        try:
            while not stop.is_set():
                try:
                    await self._follow(stop)
                except DATABASE_UNAVAILABLE as exc:
                    log.warning("database unavailable; retrying", error=str(exc) or type(exc).__name__)
                    await _wait(stop, self._poll_interval)
        finally:
            log.info("projector stopped")

    async def _follow(self, stop: asyncio.Event) -> None:
        wake = asyncio.Event()

        def on_notify(*_: object) -> None:
            wake.set()

        # A connection of its own: it holds the leases (session advisory locks die
        # with it) and listens for new events.
        conn: asyncpg.Connection = await self._pool.acquire()
        leases = _LeaseHolder(conn)
        try:
            await conn.add_listener(NOTIFY_CHANNEL, on_notify)
            while not stop.is_set():
                wake.clear()
                held = await leases.acquire([p.name for p in self._projections])
                applied = 0
                for projection in self._projections:
                    if projection.name in held and projection.name not in self.stopped:
                        try:
                            # Until a batch comes back short: what commits meanwhile wakes the next round
                            # (its NOTIFY sets ``wake``), so no empty step follows every batch.
                            while (step := await self.step(projection)) >= self._batch_size:
                                applied += step
                            applied += step
                        except (CorruptEvent, ProjectionCannotContinue) as exc:
                            await self._stop_projection(projection, exc)
                if applied:
                    log.debug("projected", events=applied)
                await _wait(stop, self._poll_interval, wake)
        finally:
            try:
                await asyncio.wait_for(leases.release_all(), timeout=2)
                await conn.remove_listener(NOTIFY_CHANNEL, on_notify)
                await self._pool.release(conn, timeout=2)
            except _RELEASE_FAILURES:
                try:
                    conn.terminate()  # a broken connection releases its locks server-side
                except asyncpg.InterfaceError:
                    pass  # lost with its server, the pool already took it back (and its locks died with it)


# A lease release that fails or is cut short: the connection is terminated instead.
_RELEASE_FAILURES: tuple[type[BaseException], ...] = (*DATABASE_UNAVAILABLE, asyncio.CancelledError)

# Advisory locks in the two-int key space (distinct from the event store's
# single-bigint append lock): (this namespace, hashtext(projection name)).
_LEASE_NAMESPACE = 0x45534350  # "ESCP"


class _LeaseHolder:
    """One instance applies each projection at a time: it holds that projection's session advisory lock.

    The checkpoint row lock in ``step`` already keeps two instances from applying
    the same batch; the lease keeps the standby from even trying, and makes the
    active instance visible in ``pg_locks``. The lock lives as long as the
    connection: a killed instance's locks are freed when PostgreSQL sees its
    connection close.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.held: set[str] = set()

    async def acquire(self, names: Sequence[str]) -> set[str]:
        for name in names:
            if name not in self.held and await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", _LEASE_NAMESPACE, name
            ):
                log.info("projection lease acquired", projection=name)
                self.held.add(name)
        return self.held

    async def release_all(self) -> None:
        for name in sorted(self.held):
            await self._conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LEASE_NAMESPACE, name)
        self.held.clear()


async def _wait(stop: asyncio.Event, timeout: float, wake: asyncio.Event | None = None) -> None:
    """Until ``stop`` (or ``wake``) is set, or ``timeout`` seconds pass."""
    waiters = [asyncio.create_task(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.create_task(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def checkpoint(conn: asyncpg.Connection, name: str) -> int:
    position = await conn.fetchval("SELECT position FROM projection_checkpoints WHERE name = $1", name)
    return position or 0


async def projection_faults(conn: asyncpg.Connection) -> dict[str, str]:
    """The projections a projector stopped at a corrupt event, with why (see ``Projector._stop_projection``)."""
    rows = await conn.fetch("SELECT name, error FROM projection_faults ORDER BY name")
    return {r["name"]: r["error"] for r in rows}
