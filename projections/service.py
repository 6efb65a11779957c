"""The projection process: projector and webhook deliverer side by side until stopped."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping

import asyncpg

from projections import all_projections
from projections.notifications import WebhookDeliverer
from projections.runner import Projector


async def run_projector(pool: asyncpg.Pool, webhooks: Mapping[str, str], stop: asyncio.Event | None = None) -> None:
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    await asyncio.gather(
        Projector(pool, all_projections()).run(stop),
        WebhookDeliverer(pool, webhooks).run(stop),
    )
