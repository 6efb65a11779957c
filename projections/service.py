"""The projection process: the projector, the notification deliverer and the log keeper side by side until
stopped."""

from __future__ import annotations

import asyncio
import signal

import asyncpg
import structlog

from events.log_keys import LogSigner
from projections import all_projections
from projections.ack_links import AckLinks
from projections.channels import ChannelsConfig, configuration_problems
from projections.delivery import Deliverer
from projections.gauges import run_gauges
from projections.log_keeper import LogKeeper, schedule_from_env
from projections.notifications import NotificationOutboxProjection
from projections.runner import Projector
from projections.watchdog_alerts import run_watchdog_alerts
from workflows.core.policy import Policy

log = structlog.get_logger("escalations.projector")


async def run_projector(
    pool: asyncpg.Pool,
    channels: ChannelsConfig,
    stop: asyncio.Event | None = None,
    *,
    links: AckLinks | None = None,
    policy: Policy | None = None,
    signer: LogSigner | None = None,
    gauges_every: float = 5.0,
) -> None:
    """Project, deliver and keep the transparency log (signing checkpoints with ``signer``, when given) until
    ``stop`` (or SIGINT/SIGTERM). A channel or target the directory or the policy names but the configuration
    lacks is logged at start-up (and reported by ``/readyz``). The read models' gauges (projection lag, dead
    letters, open cases) are sampled every ``gauges_every`` seconds for Prometheus; as often, the deadline
    watchdog tells the configured operators of every deadline newly overdue."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    for problem in await configuration_problems(pool, channels, policy):
        log.error("notification configuration error", problem=problem)
    projections = all_projections(channels)
    deliverer = Deliverer(pool, channels, links=links)
    for projection in projections:
        if isinstance(projection, NotificationOutboxProjection):
            projection.hand_to(deliverer.take, deliverer.lease_length)
    await asyncio.gather(
        Projector(pool, projections).run(stop),
        run_gauges(pool, [p.name for p in projections], stop, gauges_every),
        deliverer.run(stop),
        LogKeeper(pool, signer, schedule_from_env()).run(stop),
        run_watchdog_alerts(pool, channels, stop, gauges_every),
    )
