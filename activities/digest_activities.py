"""Composing the executive digest for the schedule's workflow: read models in, a kept digest and one
delivery per executive and channel out (the deliverer sends them like every other notification)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from temporalio import activity

from activities.contract import COMPOSE_DIGEST, DigestRequest
from projections.digest import digest_text, executive_digest
from projections.notifications import delivery_id

if TYPE_CHECKING:
    import asyncpg

    from projections.channels import ChannelsConfig

DIGEST_NAMESPACE = uuid.UUID("9a6c2f1e-0b4d-4f7a-8e3c-5d1b7a9e2c40")


class DigestActivities:
    def __init__(self, pool: asyncpg.Pool, channels: ChannelsConfig | None) -> None:
        self._pool = pool
        self._channels = channels

    @activity.defn(name=COMPOSE_DIGEST)
    async def compose(self, request: DigestRequest) -> int:
        now = request.scheduled_at
        since = now - timedelta(hours=request.hours)
        async with self._pool.acquire() as conn, conn.transaction():
            digest = await executive_digest(conn, since, now)
            await conn.execute(
                "INSERT INTO executive_digests (composed_at, period_start, digest) VALUES ($1, $2, $3) "
                "ON CONFLICT (composed_at) DO NOTHING",
                now,
                since,
                json.dumps(digest, default=str),
            )
            # The same scheduled instant composes the same digest deliveries: a retried activity adds none.
            event_id = uuid.uuid5(DIGEST_NAMESPACE, now.isoformat())
            text = digest_text(digest)
            subject = (
                f"Escalations digest: {len(digest['open_top_priority_cases'])} open P1/P2, "
                f"{len(digest['breaches'])} breaches, {len(digest['accounts_at_risk'])} accounts at risk"
            )
            executives = await conn.fetch(
                "SELECT id, doc->>'email' AS email FROM directory_entries WHERE kind = 'people' "
                "AND doc->'roles' ? 'executive' ORDER BY id"
            )
            for person in executives:
                channels = [("inbox", person["id"])]
                if person["email"] and self._channels is not None and self._channels.smtp is not None:
                    channels.append(("email", person["email"]))
                for channel, address in channels:
                    await conn.execute(
                        "INSERT INTO deliveries (id, event_id, case_id, kind, recipient, channel, address, priority, "
                        "message, created_at, next_attempt_at, give_up_at) "
                        "VALUES ($1, $2, '', 'executive_digest', $3, $4, $5, 'P2', $6, $7, $7, $8) "
                        "ON CONFLICT (event_id, recipient, channel) DO NOTHING",
                        delivery_id(event_id, person["id"], channel),
                        event_id,
                        person["id"],
                        channel,
                        address,
                        json.dumps({"subject": subject, "text": text, "kind": "executive_digest"}),
                        now,
                        now + timedelta(hours=24),
                    )
        return len(executives)

    def all(self) -> list:
        return [self.compose]
