"""The log keeper: extends the transparency log as events are appended and signs checkpoints on schedule.

It runs beside the projector (``escalations project``), wakes on the store's notification channel and also
polls, survives database outages like the projector, and is safe to run in several processes (the log's
advisory lock serialises writers; a checkpoint's size is its key). Without a signing key it still keeps the
tree, so proofs can be read, but signs nothing. A tree that does not extend the last signed checkpoint is
never signed: the refusal goes to ``projection_faults`` (so ``/readyz`` fails) and to the log.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import asyncpg
import structlog

from events import transparency_log
from events.database import DATABASE_UNAVAILABLE
from events.log_keys import LogSigner
from events.store import NOTIFY_CHANNEL
from projections.runner import _RELEASE_FAILURES, _wait

log = structlog.get_logger("escalations.log")

FAULT_NAME = "transparency_log"


def schedule_from_env() -> transparency_log.CheckpointSchedule:
    """``ESCALATIONS_CHECKPOINT_EVERY_EVENTS`` (1000) and ``ESCALATIONS_CHECKPOINT_EVERY_SECONDS`` (60)."""
    try:
        return transparency_log.CheckpointSchedule(
            int(os.environ.get("ESCALATIONS_CHECKPOINT_EVERY_EVENTS", "1000")),
            float(os.environ.get("ESCALATIONS_CHECKPOINT_EVERY_SECONDS", "60")),
        )
    except ValueError as exc:
        raise ValueError(f'rule "log.schedule": {exc}') from None


class LogKeeper:
    def __init__(
        self,
        pool: asyncpg.Pool,
        signer: LogSigner | None,
        schedule: transparency_log.CheckpointSchedule | None = None,
        *,
        poll_interval: float = 1.0,
        batch_interval: float = 0.2,
    ) -> None:
        self._pool = pool
        self._signer = signer
        self._schedule = schedule or transparency_log.CheckpointSchedule()
        self._poll_interval = poll_interval
        # Under a stream of appends, wake at most this often: each wake costs a few round trips whatever it
        # adds, so gathering a fifth of a second's events per batch keeps the log off the appends' path.
        self._batch_interval = batch_interval
        self.fault: str | None = None

    async def step(self) -> int:
        """Extend the log to the head of the store and sign if due; return leaves added."""
        async with self._pool.acquire() as conn:
            added = await transparency_log.catch_up(conn)
            if self._signer is None or self.fault is not None:
                return added
            size, _ = await transparency_log.log_size(conn)
            last = await transparency_log.latest_checkpoint(conn)
            if not self._schedule.due(size, last.size if last else -1):
                return added
            try:
                signed = await transparency_log.sign(conn, self._signer)
            except transparency_log.LogError as exc:
                await self._report(conn, size, str(exc))
                return added
            self._schedule.signed()
            if signed is not None:
                log.info("checkpoint signed", size=signed.size, root=signed.root.hex())
        return added

    async def _report(self, conn: asyncpg.Connection, size: int, error: str) -> None:
        self.fault = error
        log.error("the log refused to sign a checkpoint", error=error)
        await conn.execute(
            "INSERT INTO projection_faults (name, position, error) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, error = EXCLUDED.error, at = now()",
            FAULT_NAME,
            size,
            error,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the log until ``stop``, through database outages (a lost connection: retry after a pause).
        Anything else that goes wrong is logged and tried again, so the projector beside it keeps running."""
        log.info("log keeper started", signing=self._signer is not None)
        wake = asyncio.Event()

        def on_notify(*_: object) -> None:
            wake.set()

        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._pool.acquire()
                await conn.add_listener(NOTIFY_CHANNEL, on_notify)
                while not stop.is_set():
                    wake.clear()
                    await self.step()
                    await _wait(stop, self._batch_interval)
                    if not wake.is_set():
                        await _wait(stop, self._poll_interval, wake)
            except DATABASE_UNAVAILABLE as exc:
                log.warning("database unavailable; retrying", error=str(exc) or type(exc).__name__)
                await _wait(stop, self._poll_interval)
            except Exception:  # noqa: BLE001 - the projector beside it must not die with the keeper
                log.exception("the log keeper failed; retrying")
                await _wait(stop, self._poll_interval * 5)
            finally:
                if conn is not None:
                    await _let_go(self._pool, conn, on_notify)
        log.info("log keeper stopped")


async def _let_go(pool: asyncpg.Pool, conn: asyncpg.Connection, on_notify: Callable[..., None]) -> None:
    """Give the listening connection back, or close it when it is broken (or the pool already took it back)."""
    try:
        await asyncio.wait_for(conn.remove_listener(NOTIFY_CHANNEL, on_notify), timeout=2)
        await pool.release(conn, timeout=2)
    except _RELEASE_FAILURES:
        try:
            conn.terminate()
        except asyncpg.InterfaceError:
            pass  # lost with its server: the pool already took it back
