"""The ``pinned_policies`` table: every policy a case was opened under, by content hash (migration 0020).

Written by the opening's local activity before the workflow records the policy's hash; read by every worker
at start and every few seconds, and by hash when a worker replays a case whose policy it still has not seen
(``activities/policy_library.py``). ``InMemoryPins`` stands in for it beside the in-memory event store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Callable, Collection
from typing import Protocol

import asyncpg

from workflows.core.canonical import canonical_json
from workflows.core.policy import Policy

# A load runs on a workflow task's thread, which the SDK declares deadlocked after 2 s: give up before.
LOAD_TIMEOUT_SECONDS = 1.5


class PolicyPins(Protocol):
    async def pin(self, policy: Policy, content_hash: str) -> None:
        """Keep ``policy`` under ``content_hash`` (its own); a second pin of the same content changes nothing."""
        ...

    async def find(self, content_hash: str) -> Policy | None:
        """The policy pinned under ``content_hash`` (None: none is); ``ValueError`` naming what is wrong when what
        is pinned there is not a policy whose content hashes to ``content_hash``."""
        ...


def verified(content_hash: str, content: str) -> Policy:
    """The policy in a row that keeps one under its hash (here, or the case list's ``case_list_policies``), or
    ``ValueError`` naming what is wrong with it: content that does not parse as a policy, or a policy whose
    hash is not the row's key (a tampered or corrupt row)."""
    policy = Policy.model_validate(json.loads(content))  # pydantic's ValidationError is a ValueError, as is JSON's
    found = policy.content_hash()
    if found != content_hash:
        raise ValueError(f"the row for {content_hash} holds a policy whose hash is {found}")
    return policy


class PostgresPins:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def pin(self, policy: Policy, content_hash: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO pinned_policies (content_hash, content) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                content_hash,
                canonical_json(policy.content()),
            )

    async def find(self, content_hash: str) -> Policy | None:
        async with self._pool.acquire() as conn:
            content = await conn.fetchval("SELECT content FROM pinned_policies WHERE content_hash = $1", content_hash)
        return None if content is None else verified(content_hash, content)

    async def all_but(self, known: Collection[str]) -> dict[str, Policy]:
        """Every pinned policy but those ``known`` whose content parses and hashes to its key (a worker keeps
        up with them); a row that does not is left out here and refused, named, when a case asks for it."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT content_hash, content FROM pinned_policies WHERE NOT (content_hash = ANY($1::text[]))",
                list(known),
            )
        found = {}
        for row in rows:
            try:
                found[row["content_hash"]] = verified(row["content_hash"], row["content"])
            except ValueError:
                continue
        return found


class InMemoryPins:
    def __init__(self) -> None:
        self._policies: dict[str, Policy] = {}

    async def pin(self, policy: Policy, content_hash: str) -> None:
        self._policies.setdefault(content_hash, policy)

    async def find(self, content_hash: str) -> Policy | None:
        policy = self._policies.get(content_hash)
        if policy is not None and policy.content_hash() != content_hash:
            raise ValueError(f"the policy pinned under {content_hash} hashes to {policy.content_hash()}")
        return policy


def blocking_finder(pins: PolicyPins, loop: asyncio.AbstractEventLoop) -> Callable[[str], Policy | None]:
    """``pins.find`` for workflow code, which runs on the worker's task threads and cannot await: the query
    runs on ``loop`` (the worker's) while the calling thread waits, at most ``LOAD_TIMEOUT_SECONDS``.

    Called on ``loop``'s own thread it would wait for itself forever; it refuses instead.
    """
    loop_thread = threading.get_ident()  # built on the loop's thread (the worker is built there)

    def find(content_hash: str) -> Policy | None:
        if threading.get_ident() == loop_thread:
            raise RuntimeError("a pinned policy cannot be loaded from the event loop's own thread")
        future = asyncio.run_coroutine_threadsafe(pins.find(content_hash), loop)
        try:
            return future.result(LOAD_TIMEOUT_SECONDS)
        except concurrent.futures.TimeoutError:
            future.cancel()  # not left waiting for a connection while the task is retried
            raise TimeoutError(f"the pinned_policies table did not answer within {LOAD_TIMEOUT_SECONDS} s") from None

    return find
