"""Session fixtures: one PostgreSQL database and one of each Temporal server per session.

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
import pytest

from cli.embedded_postgres import start_embedded_postgres, stop_embedded_postgres
from events.database import create_database, create_pool, drop_database
from events.store import EventStore

pytest_plugins = ["tests.temporal_fixtures"]


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
