"""An API reply is replayed for its Idempotency-Key for the retention period, then purged."""

from __future__ import annotations

import uuid

import asyncpg

from api import idempotency
from api.idempotency import RETENTION, StoredReply


async def test_a_reply_is_replayed_within_the_retention_and_purged_after_it(pool: asyncpg.Pool) -> None:
    principal, key = f"caller-{uuid.uuid4().hex[:8]}", "k-1"
    await idempotency.remember(pool, principal, key, "a" * 64, StoredReply(200, {}, '{"first": true}'))
    replay = await idempotency.lookup(pool, principal, key, "a" * 64)
    assert replay is not None and replay.body == '{"first": true}'

    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE api_idempotency SET created_at = now() - $3::interval - interval '1 minute' "
            "WHERE principal = $1 AND key = $2",
            principal,
            key,
            RETENTION,
        )
    # Expired: not replayed, and the key may serve another request (no idempotency.key_reused).
    assert await idempotency.lookup(pool, principal, key, "b" * 64) is None
    async with pool.acquire() as conn:
        assert await idempotency.purge_expired(conn) >= 1
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM api_idempotency WHERE principal = $1 AND key = $2", principal, key
            )
            == 0
        )
    await idempotency.remember(pool, principal, key, "b" * 64, StoredReply(201, {}, '{"second": true}'))
    again = await idempotency.lookup(pool, principal, key, "b" * 64)
    assert again is not None and again.status == 201
