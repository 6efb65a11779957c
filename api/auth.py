"""Bearer tokens: only their sha256 is stored; the identity and role of a token become the event actor."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

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


class TokenRefused(Exception):
    """The bearer token does not authenticate; ``rule`` says why (unknown, revoked or expired)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def _checked_role(role: Role) -> Role:
    if role not in TOKEN_ROLES:
        raise ValueError(f"role must be one of {', '.join(r.value for r in TOKEN_ROLES)}")
    return role


async def create_token(pool: asyncpg.Pool, name: str, role: Role, *, expires_at: datetime | None = None) -> str:
    """Store a new token's hash under ``name``; return the token (shown once, never stored).

    ``ValueError`` if ``name`` already has a live token (rotate it instead) or ``expires_at`` is past."""
    _checked_role(role)
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= datetime.now(UTC)):
        raise ValueError("expires_at must be a future instant with a time zone")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        # An expired token no longer holds its name: it is marked revoked (as of now) to make room.
        await conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL AND expires_at <= now()",
            name,
        )
        try:
            await conn.execute(
                "INSERT INTO api_tokens (token_hash, name, role, expires_at) VALUES ($1, $2, $3, $4)",
                token_hash(token),
                name,
                role.value,
                expires_at,
            )
        except asyncpg.UniqueViolationError:
            raise ValueError(f"a token named {name!r} exists already (rotate or revoke it)") from None
    return token


async def list_tokens(pool: asyncpg.Pool) -> list[TokenInfo]:
    """Every token, live and past, by name then age (never the token or its hash)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT name, role, created_at, expires_at, revoked_at FROM api_tokens ORDER BY name, created_at"
        )
    return [TokenInfo(**dict(r)) for r in rows]


async def revoke_token(pool: asyncpg.Pool, name: str) -> None:
    """Revoke ``name``'s live token at once; ``LookupError`` if it has none."""
    async with pool.acquire() as conn:
        done = await conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name
        )
    if done == "UPDATE 0":
        raise LookupError(f"no live token named {name!r}")


async def rotate_token(pool: asyncpg.Pool, name: str) -> str:
    """Replace ``name``'s live token with a new one (same role and expiry) in one transaction; return it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL "
            "RETURNING role, expires_at",
            name,
        )
        if row is None:
            raise LookupError(f"no live token named {name!r}")
        if row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
            raise ValueError(f"the token named {name!r} has expired; create a new one (token create)")
        await conn.execute(
            "INSERT INTO api_tokens (token_hash, name, role, expires_at) VALUES ($1, $2, $3, $4)",
            token_hash(token),
            name,
            row["role"],
            row["expires_at"],
        )
    return token


async def authenticate(pool: asyncpg.Pool, token: str) -> Principal:
    """The token's principal; ``TokenRefused`` naming why not (``auth.bad_token``, ``auth.revoked_token``,
    ``auth.expired_token``).

    Timing reveals nothing about a token: the database looks up its SHA-256
    digest (never the token), and the digest found is compared again in
    constant time. The token itself is never logged or stored.
    """
    digest = token_hash(token)
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT token_hash, name, role, revoked_at, expires_at, now() AS now FROM api_tokens WHERE token_hash = $1",
            digest,
        )
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        raise TokenRefused("auth.bad_token", "the bearer token is unknown")
    if row["revoked_at"] is not None:
        raise TokenRefused("auth.revoked_token", f"the bearer token was revoked at {row['revoked_at'].isoformat()}")
    if row["expires_at"] is not None and row["expires_at"] <= row["now"]:
        raise TokenRefused("auth.expired_token", f"the bearer token expired at {row['expires_at'].isoformat()}")
    return Principal(row["name"], Role(row["role"]))
