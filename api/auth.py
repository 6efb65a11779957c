"""Bearer tokens: only their sha256 is stored; the identity and role of a token become the event actor."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import asyncpg

from workflows.core.events import Actor
from workflows.core.vocabulary import Role

TOKEN_PREFIX = "esc_"
TOKEN_ROLES = (Role.AGENT, Role.MANAGER, Role.EXECUTIVE, Role.AUDITOR, Role.SERVICE, Role.ADMIN)


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    @property
    def actor(self) -> Actor:
        return Actor(id=self.name, role=self.role)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(pool: asyncpg.Pool, name: str, role: Role) -> str:
    """Store a new token's hash under ``name``; return the token (shown once, never stored)."""
    if role not in TOKEN_ROLES:
        raise ValueError(f"role must be one of {', '.join(r.value for r in TOKEN_ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with pool.acquire() as conn:
        try:
            await conn.execute(
                "INSERT INTO api_tokens (token_hash, name, role) VALUES ($1, $2, $3)",
                token_hash(token),
                name,
                role.value,
            )
        except asyncpg.UniqueViolationError:
            raise ValueError(f"a token named {name!r} exists already") from None
    return token


async def authenticate(pool: asyncpg.Pool, token: str) -> Principal | None:
    """The token's principal, or None for an unknown or revoked token.

    Timing reveals nothing about a token: the database looks up its SHA-256
    digest (never the token), and the digest found is compared again in
    constant time. The token itself is never logged or stored.
    """
    digest = token_hash(token)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT token_hash, name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL", digest
        )
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        return None
    return Principal(row["name"], Role(row["role"]))
