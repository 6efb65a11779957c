"""A service started while PostgreSQL is away waits for it; a DSN that can never work is refused at once."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from events.database import SERVICE_PATIENCE, create_pool
from tests.net import free_port


async def test_a_misconfigured_dsn_is_refused_at_once_not_waited_on() -> None:
    # With the service's patience a retried configuration error would log "waiting" for five minutes.
    dsn = "postgresql://postgres@127.0.0.1:5432/postgres?sslmode=sometimes"
    with pytest.raises(asyncpg.ClientConfigurationError, match="sslmode"):
        await asyncio.wait_for(create_pool(dsn, patience=SERVICE_PATIENCE), timeout=30)


async def test_an_unreachable_database_is_waited_for_until_the_patience_runs_out() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(OSError):
        await create_pool(dsn, patience=1.5)
    # It kept trying until the patience ran out (its last wait is cut to what is left), not one backoff short.
    assert time.monotonic() - started >= 1.45
