"""One round of work every few seconds until stopped, for the services' side loops (the projector's gauges and
watchdog alerts, the API's readiness watcher): a round that fails is logged and the loop goes on; an
unreachable database only skips a round."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from events.database import DATABASE_UNAVAILABLE


async def every_until_stopped(
    stop: asyncio.Event, every: float, one_round: Callable[[], Awaitable[object]], what: str
) -> None:
    """Run ``one_round`` every ``every`` seconds (start to start) until ``stop``; ``what`` names it in logs."""
    log = structlog.get_logger("escalations.periodic")
    while not stop.is_set():
        started = time.monotonic()
        try:
            await one_round()
        except DATABASE_UNAVAILABLE as exc:
            log.warning(f"database unavailable; {what} skipped", error=str(exc) or type(exc).__name__)
        except Exception:  # noqa: BLE001 - a round that fails is logged; the service goes on
            log.exception(f"{what} failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, every - (time.monotonic() - started)))
