"""Shared fixtures: one PostgreSQL database and one of each Temporal server per session; a database of
its own for a test whose read models must see only its events; the API stack and an HTTP client.

PostgreSQL: ``DATABASE_URL`` when set, else an embedded server. Either way the
session gets a fresh database of its own, dropped at the end.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from cli.embedded_postgres import start_embedded_postgres, stop_embedded_postgres
from events.database import create_database, create_pool, drop_database
from events.store import EventStore
from tests.api_support import ApiStack, api_stack, asgi_client
from tests.projection_support import fresh_pool

pytest_plugins = ["tests.temporal_fixtures", "tests.ordering"]


@pytest.fixture(scope="session")
def server_dsn() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    data_dir = Path(tempfile.mkdtemp(prefix="esc-pg-")) / "pg"
    dsn, server = start_embedded_postgres(data_dir)
    yield dsn
    stop_embedded_postgres(server)


@pytest.fixture(scope="session")
async def database_url(server_dsn: str) -> AsyncIterator[str]:
    name = f"esc_test_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_dsn, name)
    yield url
    await drop_database(server_dsn, name)


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return EventStore(pool)


@pytest.fixture
async def own_db(server_dsn: str) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A fresh database for this test alone (pool, url): read models see only its events."""
    async for pool, url in fresh_pool(server_dsn):
        yield pool, url


@pytest.fixture
def own_pool(own_db: tuple[asyncpg.Pool, str]) -> asyncpg.Pool:
    return own_db[0]


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, pool: asyncpg.Pool, database_url: str) -> AsyncIterator[ApiStack]:
    """Worker, projector and the API in process (reach it with ``http``), over the session's database."""
    async with api_stack(dev_env.client, pool, database_url, served=False) as s:
        yield s


@pytest.fixture
async def served_stack(dev_env: WorkflowEnvironment, pool: asyncpg.Pool, database_url: str) -> AsyncIterator[ApiStack]:
    """The same with the API behind a real HTTP server: for tests whose subject is HTTP itself."""
    async with api_stack(dev_env.client, pool, database_url) as s:
        yield s


@pytest.fixture
async def http(stack: ApiStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``stack``'s API, in process."""
    async with asgi_client(stack) as client:
        yield client
