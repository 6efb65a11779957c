"""Idempotent POSTs: the same ``Idempotency-Key`` with the same request replays the stored reply.

Keys are per caller (token name) and stored in PostgreSQL, so they hold across API
restarts. The key is also passed on as the command's idempotency key, so even a
reply lost to a crash between the workflow and this table writes nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from fastapi import Request, Response

from api.auth import Principal
from api.errors import Problem
from workflows.core.canonical import canonical_json

MAX_KEY_LENGTH = 200
# How long a reply is replayed for its Idempotency-Key. After that the record is purged and the key may be
# reused; a late retry of a command is still harmless, because the command's own key is recorded in its
# events and the case answers a redelivery with what it stored.
RETENTION = timedelta(days=7)
_PURGE_BATCH = 1000


@dataclass(frozen=True)
class StoredReply:
    status: int
    headers: dict[str, str]
    body: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    """The request's identity: method, path and body (canonical JSON when it parses, so key order does not matter)."""
    try:
        canonical = canonical_json(json.loads(body)) if body else ""
    except (json.JSONDecodeError, UnicodeDecodeError):
        canonical = body.hex()
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Problem(
            422,
            "Invalid Idempotency-Key",
            f"Idempotency-Key must be 1..{MAX_KEY_LENGTH} printable characters",
            rule="idempotency.invalid_key",
        )


async def lookup(pool: asyncpg.Pool, principal: str, key: str, request_fingerprint: str) -> StoredReply | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT fingerprint, status, headers, body FROM api_idempotency "
            "WHERE principal = $1 AND key = $2 AND created_at > now() - $3::interval",
            principal,
            key,
            RETENTION,
        )
    if row is None:
        return None
    if row["fingerprint"] != request_fingerprint:
        raise Problem(
            422,
            "Idempotency-Key Reused",
            "this Idempotency-Key was used for a different request; use a new key for a new request",
            rule="idempotency.key_reused",
        )
    return StoredReply(row["status"], json.loads(row["headers"]), row["body"])


async def remember(pool: asyncpg.Pool, principal: str, key: str, request_fingerprint: str, reply: StoredReply) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO api_idempotency (principal, key, fingerprint, status, headers, body) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (principal, key) DO UPDATE SET "
            "fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, headers = EXCLUDED.headers, "
            "body = EXCLUDED.body, created_at = now() WHERE api_idempotency.created_at <= now() - $7::interval",
            principal,
            key,
            request_fingerprint,
            reply.status,
            json.dumps(reply.headers),
            reply.body,
            RETENTION,
        )
        await purge_expired(conn)


async def purge_expired(conn: asyncpg.Connection, limit: int = _PURGE_BATCH) -> int:
    """Delete up to ``limit`` records older than ``RETENTION`` (each new record sweeps a batch); how many went."""
    deleted = await conn.fetchval(
        "WITH gone AS (DELETE FROM api_idempotency WHERE ctid IN (SELECT ctid FROM api_idempotency "
        "WHERE created_at <= now() - $1::interval LIMIT $2) RETURNING 1) SELECT count(*) FROM gone",
        RETENTION,
        limit,
    )
    return int(deleted)


def command_key(principal: Principal, key: str) -> str:
    """The command's idempotency key: per caller, bounded in length whatever the header's length."""
    return "api:" + hashlib.sha256(f"{principal.name}\n{key}".encode()).hexdigest()[:48]


async def idempotent(
    request: Request,
    pool: asyncpg.Pool,
    principal: Principal,
    key: str | None,
    act: Callable[[str], Awaitable[Response]],
) -> Response:
    """Run ``act(command_key)`` once per (caller, Idempotency-Key); replay the stored reply after that.

    Without a key the request runs under a fresh one. A reply is remembered unless it says a
    dependency was down (5xx), so a retry after an outage runs again.
    """
    if key is None:
        return await act(command_key(principal, uuid.uuid4().hex))
    check_key(key)
    request_fingerprint = fingerprint(request.method, request.url.path, await request.body())
    stored = await lookup(pool, principal.name, key, request_fingerprint)
    if stored is not None:
        return Response(
            stored.body,
            status_code=stored.status,
            media_type="application/json",
            headers={**stored.headers, "Idempotent-Replayed": "true"},
        )
    response = await act(command_key(principal, key))
    if response.status_code < 500:
        headers = {k: v for k, v in response.headers.items() if k.lower() == "location"}
        await remember(
            pool,
            principal.name,
            key,
            request_fingerprint,
            StoredReply(response.status_code, headers, bytes(response.body).decode()),
        )
    return response
