"""What the API's routes run against: the pool, the Temporal client and the policy file's policy."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from temporalio.client import Client

from events import policy_versions
from events.store import EventStore
from workflows.core.policy import Policy


@dataclass
class Services:
    pool: asyncpg.Pool
    client: Client
    policy: Policy
    task_queue: str

    @property
    def store(self) -> EventStore:
        return EventStore(self.pool)

    async def policy_in_force(self) -> Policy:
        """The policy new cases are opened under: the latest published version, else ``policy``."""
        return await policy_versions.policy_in_force(self.pool, self.policy)()
