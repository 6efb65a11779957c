"""Helpers for projection tests: an isolated database per test module, histories, comparisons."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg

from events.database import create_database, create_pool, drop_database
from projections import PROJECTIONS
from projections.rebuild import TableDiff, rebuild


async def fresh_pool(server_dsn: str) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A database of its own: read models see only this test's events."""
    name = f"esc_proj_{uuid.uuid4().hex[:10]}"
    url = await create_database(server_dsn, name)
    pool = await create_pool(url, max_size=20)
    try:
        yield pool, url
    finally:
        await pool.close()
        await drop_database(server_dsn, name)


async def differences_from_rebuild(pool: asyncpg.Pool) -> list[TableDiff]:
    """Every read-model table compared row by row with a fresh rebuild (nothing swapped)."""
    diffs: list[TableDiff] = []
    for projection_type in PROJECTIONS.values():
        diffs += await rebuild(pool, projection_type, swap=False)
    return [d for d in diffs if not d.identical]
