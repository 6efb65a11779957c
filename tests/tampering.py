"""Altering stored events as only a superuser could (the append-only guard disabled), to test that it is found."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from events.store import chain_hash


async def rewrite_body(pool: asyncpg.Pool, stream_id: str, version: int, change: Callable[[str], str]) -> None:
    """Replace the stored bytes of one event with ``change(body)``, leaving its hashes as they were."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
        body = await conn.fetchval("SELECT body FROM events WHERE stream_id = $1 AND version = $2", stream_id, version)
        await conn.execute(
            "UPDATE events SET body = $3 WHERE stream_id = $1 AND version = $2", stream_id, version, change(body)
        )
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")


async def tamper(pool: asyncpg.Pool, stream_id: str, version: int, *, rechain: bool = False) -> None:
    """Flip one byte of a stored event as a superuser would, bypassing the append-only guard."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
        body = await conn.fetchval("SELECT body FROM events WHERE stream_id = $1 AND version = $2", stream_id, version)
        index = body.index('"occurred_at":"') + len('"occurred_at":"') + 3  # a digit of the year
        flipped = body[:index] + ("7" if body[index] != "7" else "8") + body[index + 1 :]
        await conn.execute(
            "UPDATE events SET body = $3 WHERE stream_id = $1 AND version = $2", stream_id, version, flipped
        )
        if rechain:
            # A cleverer forger also recomputes every later hash so the chain looks whole.
            rows = await conn.fetch(
                "SELECT version, body, prev_hash FROM events WHERE stream_id = $1 ORDER BY version", stream_id
            )
            prev = rows[0]["prev_hash"]
            for row in rows:
                new_hash = chain_hash(prev, row["body"])
                await conn.execute(
                    "UPDATE events SET prev_hash = $3, hash = $4 WHERE stream_id = $1 AND version = $2",
                    stream_id,
                    row["version"],
                    prev,
                    new_hash,
                )
                prev = new_hash
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")
