"""Sending what the outbox queued: leases, one send per delivery outside any transaction, retries.

The cycle, for every deliverer process (several may run):

1. **lease** due rows in a short transaction (``FOR UPDATE SKIP LOCKED``, then ``lease_until`` set and the
   attempt counted): no lock or transaction is held while a channel is called;
2. **send** each leased row on its channel, a few at a time (the inbox is a row of our own database);
3. **record** the outcome in another short transaction: ``delivered``; or back to ``pending`` with its next
   attempt after an exponential backoff with jitter; or ``dead`` once the row is older than its give-up
   age. Each attempt is a ``delivery_attempts`` row (when, outcome, error).

A deliverer that dies after leasing leaves the rows to be leased again when the lease runs out: delivery
is at least once, and every channel gets the delivery id to drop a repeat. A channel or target that is
not configured is a configuration error: the row stays pending (``not_configured``) and is delivered once
the configuration names it; ``/readyz`` and the start-up log say which.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import structlog

from events.database import DATABASE_UNAVAILABLE
from observability import metrics
from projections.ack_links import AckLinks
from projections.channels import ChannelsConfig, Message, NotConfigured, Senders
from projections.notifications import DELIVERIES_CHANNEL

log = structlog.get_logger("escalations.delivery")

# Deliveries whose kind invites an acknowledgement carry a one-click link.
ACKNOWLEDGEABLE = frozenset({"case_opened", "assigned", "breach", "escalated", "warning"})


class Deliverer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        config: ChannelsConfig,
        *,
        links: AckLinks | None = None,
        base_delay: timedelta = timedelta(seconds=1),
        max_delay: timedelta = timedelta(minutes=5),
        lease: timedelta = timedelta(seconds=60),
        batch_size: int = 50,
        concurrency: int = 10,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self.config = config
        self._links = links
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._lease = lease
        self._batch_size = batch_size
        self._limit = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._on_notify: Callable[..., None] = lambda *_: None
        self._senders: Senders | None = None  # while running
        self._handed: list[asyncpg.Record] = []  # handed over before it ran
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def lease_length(self) -> timedelta:
        return self._lease

    def take(self, rows: list[asyncpg.Record]) -> None:
        """Send ``rows`` now: deliveries the outbox of this process queued already leased to this deliverer
        (``NotificationOutboxProjection.hand_to``), so they need no wake-up and no lease round trip. A send
        that fails is recorded and retried like any other; one cut short by a crash waits out its lease."""
        if self._senders is None:
            self._handed.extend(rows)
            return
        for row in rows:
            task = asyncio.create_task(self._deliver_handed(self._senders, row))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _deliver_handed(self, senders: Senders, row: asyncpg.Record) -> None:
        try:
            await self._deliver(senders, row, handed=True)
        except Exception as exc:  # noqa: BLE001 - the row keeps its lease; when it runs out, a round retakes it
            log.warning(
                "handed delivery not recorded; retried after its lease", delivery_id=str(row["id"]), error=str(exc)
            )

    def backoff(self, attempts: int) -> timedelta:
        """Exponential, capped, with jitter (half to all of it), so retries of many rows spread out."""
        full = min(self._base_delay * (2 ** max(0, attempts - 1)), self._max_delay)
        return full * random.uniform(0.5, 1.0)

    async def lease(self) -> list[asyncpg.Record]:
        """Take due rows for this deliverer (one statement, atomic on its own; attempts counted now)."""
        async with self._pool.acquire() as conn:
            return await conn.fetch(
                "UPDATE deliveries SET lease_until = now() + $2::interval, attempts = attempts + 1 "
                "WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= now() "
                "AND (lease_until IS NULL OR lease_until < now()) ORDER BY next_attempt_at LIMIT $1 "
                "FOR UPDATE SKIP LOCKED) RETURNING *",
                self._batch_size,
                self._lease,
            )

    async def deliver_due(self, senders: Senders) -> int:
        """Lease, send and record every due row (one batch); returns how many were attempted."""
        rows = await self.lease()
        await asyncio.gather(*(self._deliver(senders, row) for row in rows))
        return len(rows)

    async def _deliver(self, senders: Senders, row: asyncpg.Record, *, handed: bool = False) -> None:
        async with self._limit:
            # Sent only with at least half a lease left (a send's time-outs are shorter than that).
            if handed and row["lease_until"] - self._clock() < self._lease / 2:
                # Waited so long for a slot (a backlog handed over at once) that its lease may run out while
                # it is sent: a lease round would take it again, and it would go twice. It is left to that round.
                return
            outcome, error = "delivered", None
            try:
                await self._send(senders, row)
            except NotConfigured as exc:
                outcome, error = "not_configured", f"not configured: {exc}"
            except Exception as exc:  # noqa: BLE001 - any failure of a channel is recorded and retried
                outcome, error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
            await self._record(row, outcome, error)

    async def _send(self, senders: Senders, row: asyncpg.Record) -> None:
        message_doc = json.loads(row["message"])
        link = None
        # A chat message to a person mentions them, and may carry their link only in a room of their own.
        person: dict[str, Any] | None = None
        if row["channel"] == "chat" and not row["recipient"].startswith(("team:", "webhook:")):
            doc = await self._pool.fetchval(
                "SELECT doc FROM directory_entries WHERE kind = 'people' AND id = $1", row["recipient"]
            )
            person = json.loads(doc) if doc is not None else None
        if self._links is not None and row["kind"] in ACKNOWLEDGEABLE and _reaches_person_alone(row, person):
            link = self._links.url_for(row["case_id"], row["recipient"], str(row["id"]))
        message = Message(
            delivery_id=str(row["id"]),
            subject=message_doc["subject"],
            text=message_doc["text"],
            link=link,
            payload={"delivery_id": str(row["id"]), **message_doc},
        )
        channel = row["channel"]
        if channel == "inbox":
            await self._pool.execute(
                "INSERT INTO inbox (delivery_id, person, case_id, kind, subject, text, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id) DO NOTHING",
                row["id"],
                row["recipient"],
                row["case_id"],
                row["kind"],
                message.subject,
                message.text,
                row["created_at"],
            )
        elif channel == "email":
            await senders.email(row["address"], message)
        elif channel == "chat":
            await senders.chat(row["address"], person.get("chat") if person else None, message)
        elif channel == "webhook":
            await senders.webhook(row["address"].removeprefix("webhook:"), message, int(self._clock().timestamp()))
        else:
            raise NotConfigured(f"unknown channel {channel!r}")

    async def _record(self, row: asyncpg.Record, outcome: str, error: str | None) -> None:
        now = self._clock()
        attempt = row["attempts"]
        # Only while this attempt's lease holds: a deliverer whose lease ran out (a slow send) must not
        # overwrite what the one that leased the row after it recorded.
        mine = "id = $1 AND attempts = ${} AND status = 'pending'"
        async with self._pool.acquire() as conn, conn.transaction():
            if outcome == "delivered":
                await conn.execute(
                    "UPDATE deliveries SET status = 'delivered', delivered_at = $2, lease_until = NULL, "
                    "last_error = NULL WHERE " + mine.format(3),
                    row["id"],
                    now,
                    attempt,
                )
            else:
                dead = outcome != "not_configured" and now >= row["give_up_at"]
                await conn.execute(
                    "UPDATE deliveries SET status = $2, next_attempt_at = $3, lease_until = NULL, last_error = $4 "
                    "WHERE " + mine.format(5),
                    row["id"],
                    "dead" if dead else "pending",
                    now + (self._max_delay if outcome == "not_configured" else self.backoff(attempt)),
                    error,
                    attempt,
                )
                if outcome == "not_configured" and row["last_error"] == error:
                    return  # still waiting on the same configuration: recorded once, not every round
                if dead:
                    outcome = "dead"
            await conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome, error) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (delivery_id, attempt) DO NOTHING",
                row["id"],
                attempt,
                now,
                outcome,
                error,
            )
        metrics.record_delivery(
            row["channel"], outcome, (now - row["created_at"]).total_seconds() if outcome == "delivered" else None
        )
        if outcome != "delivered":
            log.warning(
                "delivery failed",
                delivery_id=str(row["id"]),
                channel=row["channel"],
                recipient=row["recipient"],
                attempt=attempt,
                outcome=outcome,
                error=error,
            )

    async def run(self, stop: asyncio.Event, poll_interval: float = 0.5) -> None:
        """Deliver until ``stop``: woken by the outbox (``LISTEN``) as soon as deliveries are queued, and
        polling every ``poll_interval`` for retries that fall due and for a wake-up lost with a connection.
        Nothing the database or a channel does stops it (it shares the projector's process)."""
        wake = asyncio.Event()
        listener: asyncpg.Connection | None = None
        async with httpx.AsyncClient() as http:
            senders = Senders(self.config, http)
            self._senders = senders
            handed, self._handed = self._handed, []
            self.take(handed)
            try:
                while not stop.is_set():
                    if listener is not None and not _alive(listener):
                        listener = None  # lost with its server (the pool has taken it back): take another
                    if listener is None:
                        listener = await self._listen(wake)
                    wake.clear()
                    try:
                        attempted = await self.deliver_due(senders)
                    except DATABASE_UNAVAILABLE as exc:
                        log.warning("database unavailable; retrying", error=str(exc) or type(exc).__name__)
                        attempted = 0
                    except Exception:  # noqa: BLE001 - logged, then the next round; a deliverer never dies
                        log.exception("delivery round failed; retrying")
                        attempted = 0
                    if not attempted:
                        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
                        await asyncio.wait(waits, timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED)
                        for task in waits:
                            task.cancel()
            finally:
                self._senders = None
                if self._sending:  # handed sends under way finish (or fail and are recorded) before the client closes
                    await asyncio.gather(*self._sending, return_exceptions=True)
                if listener is not None:
                    await self._drop(listener)

    async def _listen(self, wake: asyncio.Event) -> asyncpg.Connection | None:
        """A pool connection kept to listen for new deliveries (None: polling only, until it can)."""
        try:
            conn: asyncpg.Connection = await self._pool.acquire()
        except Exception as exc:  # noqa: BLE001 - no connection now: poll, and try again next round
            log.warning("cannot listen for new deliveries; polling", error=str(exc) or type(exc).__name__)
            return None
        self._on_notify = lambda *_: wake.set()
        try:
            await conn.add_listener(DELIVERIES_CHANNEL, self._on_notify)
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot listen for new deliveries; polling", error=str(exc) or type(exc).__name__)
            await self._drop(conn)
            return None
        return conn

    async def _drop(self, conn: asyncpg.Connection) -> None:
        """Give the listening connection back (or, if it is broken, close it); never raises."""
        if not _alive(conn):
            return None  # the pool took a lost connection back itself
        try:
            await conn.remove_listener(DELIVERIES_CHANNEL, self._on_notify)
            await self._pool.release(conn, timeout=2)
        except Exception:  # noqa: BLE001 - a broken or already released connection: close what is left
            try:
                conn.terminate()
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
        return None


def _reaches_person_alone(row: asyncpg.Record, person: dict[str, Any] | None) -> bool:
    """A link acknowledges as its person: it goes only where nobody else reads it (their email, or a chat
    channel of their own, ``person`` being their directory entry), never into a team's room."""
    if row["recipient"].startswith(("team:", "webhook:")):
        return False
    if row["channel"] == "email":
        return True
    own = person.get("chat_channel") if person else None
    return row["channel"] == "chat" and own is not None and own == row["address"]


def _alive(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection still works (a lost one is detached by the pool: any call raises)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


async def redrive(pool: asyncpg.Pool, delivery: str | None = None) -> int:
    """Put dead deliveries (one, or all) back in the queue, due now, with a fresh give-up age."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = now(), lease_until = NULL, "
            "give_up_at = now() + (give_up_at - created_at) WHERE status = 'dead' AND ($1::uuid IS NULL OR id = $1) "
            "RETURNING id, attempts",
            delivery,
        )
        for row in rows:
            await conn.execute(
                "INSERT INTO delivery_attempts (delivery_id, attempt, at, outcome) VALUES ($1, $2, now(), 'redriven') "
                "ON CONFLICT DO NOTHING",
                row["id"],
                row["attempts"] + 1000000,  # a marker row, numbered apart from the send attempts
            )
    return len(rows)


async def deliveries(pool: asyncpg.Pool, *, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Deliveries (newest first), each with its attempts."""
    rows = await pool.fetch(
        "SELECT id, event_id, case_id, kind, recipient, channel, address, priority, status, attempts, created_at, "
        "next_attempt_at, delivered_at, last_error FROM deliveries WHERE ($1::text IS NULL OR status = $1) "
        "ORDER BY created_at DESC, id LIMIT $2",
        status,
        limit,
    )
    attempts = await pool.fetch(
        "SELECT delivery_id, attempt, at, outcome, error FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[]) "
        "ORDER BY at, attempt",
        [r["id"] for r in rows],
    )
    by_id: dict[Any, list[dict[str, Any]]] = {}
    for a in attempts:
        by_id.setdefault(a["delivery_id"], []).append({"at": a["at"], "outcome": a["outcome"], "error": a["error"]})
    return [dict(r) | {"history": by_id.get(r["id"], [])} for r in rows]
