"""The deadline watchdog tells the operators: every overdue deadline (``watchdog.overdue_deadlines``) is sent
once to each operator target the notification config names (``operators``), and retried until it goes.

Each (deadline, target) is a row of ``watchdog_alerts`` (migrations 0017 to 0019): inserted when the deadline is
first found overdue (whichever projector instance finds it first) and claimed for a send in one statement that
counts the attempt and leases the row for ``LEASE``. While the lease runs no other instance claims the row or
forgets it; the claimant starts a send only in the lease's first half and cuts it off after 30 s, so it ends
inside the lease and records the outcome only if its attempt is still the row's latest. A send that fails is
retried after 5 s, doubling, at most 5 minutes. A deadline whose terminal event is stored before its alert
was claimed is not sent at all; a sent alert is kept on record for 90 days after its deadline stops being
overdue, then pruned. The alert's id (its Message-ID, its webhook id) is the same for every
attempt, so a receiver can tell a repeat. Nothing here writes to a case: the watchdog proves the promise
from outside the engine that keeps it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import structlog

from projections.channels import ChannelsConfig, Message, Senders
from projections.periodic import every_until_stopped
from projections.watchdog import OverdueDeadline, margin_from_env, overdue_deadlines

log = structlog.get_logger("escalations.watchdog")

ALERT_NAMESPACE = uuid.UUID("5d0c3a52-9a51-4b8e-9d5f-2f1a7c44a0e1")
# A failed send is retried after 5 s, doubling with each attempt, at most 5 minutes.
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=5)
# How long a claim keeps the row from other instances; sends start only in its first half, and each is cut
# off after SEND_TIMEOUT (a channel's own timeouts apply per step), so every send ends inside the lease.
LEASE = timedelta(minutes=2)
SEND_TIMEOUT = timedelta(seconds=30)
BATCH = 100
# How long an alert that was sent stays on record once its deadline is no longer overdue.
NOTIFIED_KEPT = timedelta(days=90)

_KEY = "(case_id, kind, level, due_at, target)"


def alert_id(case_id: str, kind: str, level: int, due_at: datetime, target: str) -> str:
    """The alert's idempotency key (its email Message-ID, its webhook id): the same for every attempt."""
    return str(uuid.uuid5(ALERT_NAMESPACE, f"{case_id}|{kind}|{level}|{due_at.isoformat()}|{target}"))


_OVERDUE_NOW = "(SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[], $5::text[]))"


async def record_found(conn: asyncpg.Connection, overdue: Sequence[OverdueDeadline], targets: Sequence[str]) -> None:
    """Remember every (overdue deadline, target) not yet remembered; forget unsent ones no longer overdue;
    note when a sent one stopped being overdue, and prune it ``NOTIFIED_KEPT`` after."""
    keys = [(o.case_id, o.kind, o.level, o.due_at, t) for o in overdue for t in targets]
    columns = [list(column) for column in zip(*keys, strict=True)] if keys else [[], [], [], [], []]
    async with conn.transaction():
        await conn.executemany(
            "INSERT INTO watchdog_alerts (case_id, kind, level, due_at, target, found_at, next_attempt_at) "
            "VALUES ($1, $2, $3, $4, $5, now(), now()) ON CONFLICT DO NOTHING",
            keys,
        )
        # Enforced (or stopped) before anyone was told, or the target left the configuration: nothing to say.
        # A leased row is being sent by an instance whose view may differ from this one's: it stays.
        await conn.execute(
            "DELETE FROM watchdog_alerts WHERE notified_at IS NULL AND (leased_until IS NULL OR leased_until <= now()) "
            f"AND {_KEY} NOT IN {_OVERDUE_NOW}",
            *columns,
        )
        # What was told stays on record: from the moment its deadline is no longer overdue, NOTIFIED_KEPT. Found
        # overdue again (this instance's view had lagged), it is kept as long as it is; forgotten while still
        # overdue, it would be found and told again.
        await conn.execute(
            "UPDATE watchdog_alerts SET cleared_at = now() WHERE notified_at IS NOT NULL AND cleared_at IS NULL "
            f"AND {_KEY} NOT IN {_OVERDUE_NOW}",
            *columns,
        )
        await conn.execute(
            f"UPDATE watchdog_alerts SET cleared_at = NULL WHERE cleared_at IS NOT NULL AND {_KEY} IN {_OVERDUE_NOW}",
            *columns,
        )
        await conn.execute("DELETE FROM watchdog_alerts WHERE cleared_at < now() - $1::interval", NOTIFIED_KEPT)


async def claim(conn: asyncpg.Connection, limit: int = BATCH) -> list[asyncpg.Record]:
    """Take due unsent alerts that no one holds, in one statement: each one's attempt is counted and the row
    leased for ``LEASE`` before anything is sent, so no other instance takes it meanwhile."""
    return await conn.fetch(
        "UPDATE watchdog_alerts SET attempts = attempts + 1, leased_until = now() + $2::interval "
        f"WHERE {_KEY} IN (SELECT {_KEY[1:-1]} FROM watchdog_alerts WHERE notified_at IS NULL "
        "AND next_attempt_at <= now() AND (leased_until IS NULL OR leased_until <= now()) "
        "ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING *",
        limit,
        LEASE,
    )


async def record_sent(pool: asyncpg.Pool, row: asyncpg.Record) -> bool:
    """Mark the alert told; False if this attempt is no longer the row's latest (its lease ran out)."""
    status = await pool.execute(
        f"UPDATE watchdog_alerts SET notified_at = now(), last_error = NULL, leased_until = NULL "
        f"WHERE {_KEY} = ($1, $2, $3, $4, $5) AND attempts = $6",
        *_key_of(row),
        row["attempts"],
    )
    return status.endswith(" 1")


async def record_failure(pool: asyncpg.Pool, row: asyncpg.Record, error: str) -> None:
    """The send failed: release the lease and wait for the retry (5 s, doubling per attempt, at most 5 min)."""
    await pool.execute(
        "UPDATE watchdog_alerts SET last_error = $7, leased_until = NULL, "
        # The exponent is capped before the product: 5 s x 2^41 overflows an interval.
        "next_attempt_at = now() + least($8::interval * power(2, least(attempts - 1, 16)), $9::interval) "
        f"WHERE {_KEY} = ($1, $2, $3, $4, $5) AND attempts = $6",
        *_key_of(row),
        row["attempts"],
        error,
        FIRST_RETRY,
        MAX_RETRY,
    )


def _key_of(row: asyncpg.Record) -> tuple[object, ...]:
    return tuple(row[c] for c in ("case_id", "kind", "level", "due_at", "target"))


def message_for(row: asyncpg.Record, now: datetime) -> Message:
    overdue = OverdueDeadline(row["case_id"], row["kind"], row["level"], row["due_at"], now - row["due_at"])
    key = alert_id(row["case_id"], row["kind"], row["level"], row["due_at"], row["target"])
    return Message(
        delivery_id=key,
        subject=f"[watchdog] case {row['case_id']}: {row['kind']} deadline overdue, no breach stored",
        text=overdue.describe() + ". Is a worker running? `escalations watchdog` lists every such deadline; "
        "`escalations resurrect` starts a workflow for every open case that has none.",
        link=None,
        payload={
            "delivery_id": key,
            "kind": "deadline_overdue",
            "case_id": row["case_id"],
            "deadline": row["kind"],
            "level": row["level"],
            "due_at": row["due_at"].isoformat(),
            "overdue_seconds": int(overdue.overdue.total_seconds()),
        },
    )


async def send(senders: Senders, row: asyncpg.Record, now: datetime) -> None:
    """One alert on its target's channel; raises if the channel did not take it."""
    channel, _, address = row["target"].partition(":")
    message = message_for(row, now)
    if channel == "email":
        await senders.email(address, message)
    elif channel == "chat":
        await senders.chat(address, None, message)
    else:
        await senders.webhook(address, message, int(now.timestamp()))


async def notify_operators(pool: asyncpg.Pool, senders: Senders, margin: timedelta) -> int:
    """One round: find the overdue deadlines, remember them, send what is due; returns how many were sent."""
    targets = senders.config.operators
    async with pool.acquire() as conn:
        await record_found(conn, await overdue_deadlines(conn, margin), targets)
        claimed = await claim(conn)
    claimed_at = time.monotonic()
    sent = 0
    for row in claimed:
        if time.monotonic() - claimed_at > (LEASE / 2).total_seconds():
            break  # too little of the lease is left for a send: the rest go at their next claim
        try:
            async with asyncio.timeout(SEND_TIMEOUT.total_seconds()):
                await send(senders, row, datetime.now(UTC))
        except Exception as exc:  # noqa: BLE001 - any failure of a channel is recorded; the row is retried
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("operator alert not sent", case_id=row["case_id"], target=row["target"], error=error)
            await record_failure(pool, row, error)
            continue
        if not await record_sent(pool, row):
            log.warning("operator alert sent after its lease ended", case_id=row["case_id"], target=row["target"])
        log.error(
            "operators told of an overdue deadline", case_id=row["case_id"], kind=row["kind"], target=row["target"]
        )
        sent += 1
    return sent


async def run_watchdog_alerts(
    pool: asyncpg.Pool, channels: ChannelsConfig, stop: asyncio.Event, every: float = 5.0
) -> None:
    """A round every ``every`` seconds until ``stop``, when operators are configured; an unreachable database
    skips a round, never ends the loop."""
    if not channels.operators:
        log.warning("no operators configured: an overdue deadline is reported by the gauge and /readyz only")
        return
    margin = margin_from_env()
    async with httpx.AsyncClient() as http:
        senders = Senders(channels, http)
        await every_until_stopped(stop, every, lambda: notify_operators(pool, senders, margin), "a watchdog round")
