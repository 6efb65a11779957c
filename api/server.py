"""Serving the API with uvicorn inside our own event loop (stopped by our stop event, not uvicorn's signals)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from api.app import create_app
from api.services import Services
from events.database import SERVICE_PATIENCE, create_pool
from events.log_keys import signer_from_env
from observability import tracing
from projections.ack_links import AckLinks
from projections.channels import ChannelsConfig
from projections.watchdog import margin_from_env
from worker import Settings, connect_client
from workflows.policy_files import load_policy


async def build_services(settings: Settings) -> Services:
    if settings.database_url is None or settings.temporal_address is None:
        raise RuntimeError("the API needs DATABASE_URL and TEMPORAL_ADDRESS (or use `escalations up`)")
    pool = await create_pool(
        settings.database_url, max_size=settings.db_pool_size, role=settings.db_role or None, patience=SERVICE_PATIENCE
    )
    client = await connect_client(settings.temporal_address, settings.namespace)
    channels = ChannelsConfig.from_env()
    return Services(
        pool=pool,
        client=client,
        policy=load_policy(settings.policy_path),
        task_queue=settings.task_queue,
        channels=channels,
        links=AckLinks.from_env(channels.base_url),
        log_signer=signer_from_env(),
        watchdog_margin=margin_from_env(),
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # our process owns SIGINT/SIGTERM
        yield


async def serve_api(settings: Settings, host: str, port: int, stop: asyncio.Event) -> None:
    # Before the app exists: it turns FastAPI's server span on only if tracing is on when it is created.
    tracing.configure_from_env("api")
    app = create_app(lambda: build_services(settings))
    server = _Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    await asyncio.wait([serving, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving
