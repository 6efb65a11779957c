"""Notification outbox and its webhook deliverer.

The projection turns the events that need a person into one outbox row per
(event, target), addressed to the targets the case's *pinned* policy names
for the level concerned:

* ``deadline_warning`` / ``deadline_breached`` -> the level at which it fired
  (an ``update`` kind is an executive update due);
* ``escalated`` -> the level escalated to;
* ``resolution_proposed`` awaiting compensation approval -> the current level.

The deliverer POSTs each row as JSON with ``Idempotency-Key: <event id>``,
at least once, retrying with exponential backoff. After ``max_attempts`` (or
for a target with no URL configured) the row becomes ``failed``: it stays in
the table, visible and retryable, never dropped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import structlog

from events.database import DATABASE_UNAVAILABLE
from projections.runner import Projection
from workflows.core.events import (
    DeadlineBreached,
    DeadlineWarning,
    DeEscalated,
    Escalated,
    Opened,
    RecordedEvent,
    ResolutionProposed,
    case_id_of,
)

log = structlog.get_logger("escalations.notifications")


class NotificationOutboxProjection(Projection):
    name = "notifications"
    tables = ("notification_cases", "notifications")
    # Delivery state is not derived from events; rebuilding would re-send everything.
    rebuildable = False
    derived_columns = {"notifications": ("event_id", "target", "case_id", "kind", "payload", "created_at")}

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        t = self.t
        for event in events:
            data = event.data
            case_id = case_id_of(event.stream_id)
            if isinstance(data, Opened):
                targets = {str(lvl["level"]): lvl.get("notify", []) for lvl in data.policy["escalation"]["levels"]}
                await conn.execute(
                    f"INSERT INTO {t['notification_cases']} (case_id, level, level_targets) VALUES ($1, 1, $2) "
                    f"ON CONFLICT (case_id) DO NOTHING",
                    case_id,
                    json.dumps(targets),
                )
                continue
            if isinstance(data, Escalated | DeEscalated):
                await conn.execute(
                    f"UPDATE {t['notification_cases']} SET level = $2 WHERE case_id = $1", case_id, data.to_level
                )
            notice = _notice(data)
            if notice is None:
                continue
            kind, level_override = notice
            case = await conn.fetchrow(
                f"SELECT level, level_targets FROM {t['notification_cases']} WHERE case_id = $1", case_id
            )
            level = level_override or case["level"]
            payload = {
                "event_id": str(event.event_id),
                "case_id": case_id,
                "kind": kind,
                "level": level,
                "event": json.loads(event.model_dump_json(include={"type", "occurred_at", "data", "version"})),
            }
            for target in json.loads(case["level_targets"]).get(str(level), []):
                await conn.execute(
                    f"INSERT INTO {t['notifications']} (event_id, target, case_id, kind, payload, created_at, "
                    f"next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING",
                    event.event_id,
                    target,
                    case_id,
                    kind,
                    json.dumps(payload),
                    event.recorded_at,
                )


def _notice(data: Any) -> tuple[str, int | None] | None:
    """(notification kind, level to address or None for the case's level), or None."""
    if isinstance(data, DeadlineWarning):
        kind = "executive_update_due" if data.kind.value == "update" else f"{data.kind.value}_deadline_warning"
        return kind, data.level
    if isinstance(data, DeadlineBreached):
        kind = "executive_update_missed" if data.kind.value == "update" else f"{data.kind.value}_deadline_breached"
        return kind, data.level
    if isinstance(data, Escalated):
        return "escalated_to_level", data.to_level
    if isinstance(data, ResolutionProposed) and data.needs_compensation_approval:
        return "compensation_awaiting_approval", None
    return None


class WebhookDeliverer:
    """Delivers due outbox rows. Several deliverers may run: rows are claimed with SKIP LOCKED."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        webhooks: Mapping[str, str],
        *,
        max_attempts: int = 12,
        base_delay: timedelta = timedelta(seconds=1),
        max_delay: timedelta = timedelta(minutes=10),
        timeout: float = 10.0,
        batch_size: int = 50,
    ) -> None:
        self._pool = pool
        self._webhooks = dict(webhooks)
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._timeout = timeout
        self._batch_size = batch_size

    def backoff(self, attempts: int) -> timedelta:
        return min(self._base_delay * (2 ** (attempts - 1)), self._max_delay)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """Attempt every row due now; return how many were attempted."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT event_id, target, payload, attempts FROM notifications "
                "WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at "
                "LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            for row in rows:
                await self._attempt(conn, client, row)
        return len(rows)

    async def _attempt(self, conn: asyncpg.Connection, client: httpx.AsyncClient, row: asyncpg.Record) -> None:
        attempts = row["attempts"] + 1
        target = row["target"]
        url = self._webhooks.get(target.removeprefix("webhook:"))
        error: str | None
        if url is None:
            error = f"no webhook URL configured for target {target!r}"
            attempts = self._max_attempts  # retrying cannot help until configured
        else:
            try:
                response = await client.post(
                    url,
                    content=row["payload"],
                    headers={"Content-Type": "application/json", "Idempotency-Key": str(row["event_id"])},
                    timeout=self._timeout,
                )
                error = None if response.is_success else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        now = datetime.now(UTC)
        if error is None:
            await conn.execute(
                "UPDATE notifications SET status = 'delivered', attempts = $3, delivered_at = $4, last_error = NULL "
                "WHERE event_id = $1 AND target = $2",
                row["event_id"],
                target,
                attempts,
                now,
            )
            return
        status = "failed" if attempts >= self._max_attempts else "pending"
        await conn.execute(
            "UPDATE notifications SET status = $3, attempts = $4, last_error = $5, next_attempt_at = $6 "
            "WHERE event_id = $1 AND target = $2",
            row["event_id"],
            target,
            status,
            attempts,
            error,
            now + self.backoff(attempts),
        )
        log.warning(
            "webhook delivery failed",
            target=target,
            event_id=str(row["event_id"]),
            attempts=attempts,
            error=error,
            status=status,
        )

    async def run(self, stop: asyncio.Event, poll_interval: float = 0.5) -> None:
        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                try:
                    attempted = await self.deliver_due(client)
                except DATABASE_UNAVAILABLE as exc:
                    log.warning("database unavailable; retrying", error=str(exc) or type(exc).__name__)
                    attempted = 0
                if not attempted:
                    try:
                        await asyncio.wait_for(stop.wait(), poll_interval)
                    except TimeoutError:
                        pass
