"""Idempotent POSTs: the same ``Idempotency-Key`` with the same request replays the stored reply.

Keys are per caller (token name) and stored in PostgreSQL, so they hold across API
restarts. The key is also passed on as the command's idempotency key, so even a
reply lost to a crash between the workflow and this table writes nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import asyncpg

from api.problems import Problem
from workflows.core.canonical import canonical_json

MAX_KEY_LENGTH = 200


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
            "SELECT fingerprint, status, headers, body FROM api_idempotency WHERE principal = $1 AND key = $2",
            principal,
            key,
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
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            principal,
            key,
            request_fingerprint,
            reply.status,
            json.dumps(reply.headers),
            reply.body,
        )
