"""Published policy versions (content hash, author, time, reason); the latest is the one new cases take.

A version is the resolved policy content (calendars expanded, see
``workflows/calendar_source.py``) stored as canonical JSON under its sha256, so
``show`` returns exactly what a case pins. Publishing the same content again
adds a row: that version is current again, and the list shows when.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from events.directory_store import policy_problems
from workflows.core.canonical import canonical_json
from workflows.core.policy import Policy, pinned_policy


@dataclass(frozen=True)
class PolicyVersion:
    seq: int
    content_hash: str
    label: str
    author: str
    reason: str
    published_at: datetime
    content: dict

    @property
    def policy(self) -> Policy:
        return Policy.model_validate(self.content)


_COLUMNS = "seq, content_hash, label, content, author, reason, published_at"


def _version(row: asyncpg.Record) -> PolicyVersion:
    return PolicyVersion(
        seq=row["seq"],
        content_hash=row["content_hash"],
        label=row["label"],
        author=row["author"],
        reason=row["reason"],
        published_at=row["published_at"],
        content=json.loads(row["content"]),
    )


class PolicyRefused(ValueError):
    """A policy that cannot be published as it stands (``rule`` names why)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} (rule {rule})")
        self.rule = rule


async def publish(pool: asyncpg.Pool, policy: Policy, *, author: str, reason: str) -> PolicyVersion:
    """Make ``policy`` the current version (the one new cases take) and return it.

    Refused (``PolicyRefused``, nothing written) when, with the directory as it is now, a routing rule names
    a team the directory lacks or a level would reach nobody: found at publication, not at 3 a.m.
    """
    if not author.strip() or not reason.strip():
        raise ValueError("a published policy version needs an author and a reason")
    problems = await policy_problems(pool, policy)
    if problems:
        rule = problems[0][0]
        raise PolicyRefused(rule, "; ".join(message for _, message in problems))
    async with pool.acquire() as conn:
        # Re-publishing an earlier version adds a row: it is current again, and nothing is rewritten.
        row = await conn.fetchrow(
            f"INSERT INTO policy_versions (content_hash, label, content, author, reason) "
            f"VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            policy.content_hash(),
            policy.label,
            canonical_json(policy.content()),
            author,
            reason,
        )
    return _version(row)


async def list_versions(pool: asyncpg.Pool) -> list[PolicyVersion]:
    """Every published version, oldest first (the last is current)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM policy_versions ORDER BY seq")
    return [_version(r) for r in rows]


async def find(pool: asyncpg.Pool, hash_prefix: str) -> PolicyVersion | None:
    """The version whose hash starts with ``hash_prefix`` (at least 8 characters), if exactly one does."""
    if len(hash_prefix) < 8 or not all(c in "0123456789abcdef" for c in hash_prefix):
        raise ValueError("give at least the first 8 hex characters of a policy hash")
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM policy_versions WHERE content_hash LIKE $1 || '%' ORDER BY seq", hash_prefix
        )
    hashes = {r["content_hash"] for r in rows}
    if len(hashes) > 1:
        raise ValueError(f"{hash_prefix!r} names {len(hashes)} versions; give more of the hash")
    return _version(rows[-1]) if rows else None


async def current(pool: asyncpg.Pool) -> PolicyVersion | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM policy_versions ORDER BY seq DESC LIMIT 1")
    return _version(row) if row else None


def policy_in_force(pool: asyncpg.Pool, fallback: Policy) -> Callable[[], Awaitable[Policy]]:
    """What the worker pins into each new case: the current version, or ``fallback`` until one is published."""

    async def current_or_fallback() -> Policy:
        version = await current(pool)
        return pinned_policy(version.content, version.content_hash) if version else fallback

    return current_or_fallback
