"""Webhook delivery against a real local HTTP server that fails the first attempts."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import pytest

from events.store import EventStore
from projections import all_projections
from projections.notifications import WebhookDeliverer
from projections.runner import Projector
from samples.histories import append_history, generate_case

FAILURES_PER_KEY = 2


class FlakyReceiver:
    """Answers 503 to the first attempts for each idempotency key, then 200; records everything."""

    def __init__(self) -> None:
        self.attempts: Counter[str] = Counter()
        self.delivered: dict[str, dict] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                key = self.headers["Idempotency-Key"]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.attempts[key] += 1
                    fail = receiver.attempts[key] <= FAILURES_PER_KEY
                    if not fail:
                        receiver.delivered.setdefault(f"{key} {self.path}", body)
                self.send_response(503 if fail else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[FlakyReceiver]:
    flaky = FlakyReceiver()
    thread = threading.Thread(target=flaky.server.serve_forever, daemon=True)
    thread.start()
    yield flaky
    flaky.server.shutdown()


async def test_every_notification_arrives_despite_failures_and_duplicates_share_a_key(
    own_pool: asyncpg.Pool, receiver: FlakyReceiver
) -> None:
    rng = random.Random(21)
    await append_history(EventStore(own_pool), [generate_case(rng, i) for i in range(8)])
    await Projector(own_pool, all_projections()).catch_up()
    async with own_pool.acquire() as conn:
        expected = {
            (str(r["event_id"]), r["target"]) for r in await conn.fetch("SELECT event_id, target FROM notifications")
        }
        targets = {r["target"] for r in await conn.fetch("SELECT DISTINCT target FROM notifications")}
    assert len(expected) > 20 and targets <= {
        "webhook:support",
        "webhook:esc-managers",
        "webhook:directors",
        "webhook:exec-sponsor",
    }
    webhooks = {t.removeprefix("webhook:"): f"{receiver.url}/{t.removeprefix('webhook:')}" for t in targets}
    deliverer = WebhookDeliverer(own_pool, webhooks, base_delay=timedelta(milliseconds=20), max_attempts=10)
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            await deliverer.deliver_due(client)
            async with own_pool.acquire() as conn:
                pending = await conn.fetchval("SELECT count(*) FROM notifications WHERE status <> 'delivered'")
            if pending == 0:
                break
            await asyncio.sleep(0.03)
    delivered = {(key.split()[0], "webhook:" + key.split()[1].lstrip("/")) for key in receiver.delivered}
    assert delivered == expected
    # Each key was retried after its failures, always with the same key and body.
    assert all(count == FAILURES_PER_KEY + 1 for count in receiver.attempts.values())
    async with own_pool.acquire() as conn:
        rows = await conn.fetch("SELECT attempts, last_error, delivered_at FROM notifications")
    assert all(r["attempts"] == FAILURES_PER_KEY + 1 and r["delivered_at"] is not None for r in rows)


async def test_a_target_without_a_url_stays_visible_as_failed(own_pool: asyncpg.Pool, receiver: FlakyReceiver) -> None:
    rng = random.Random(4)
    await append_history(EventStore(own_pool), [generate_case(rng, i) for i in range(5)])
    await Projector(own_pool, all_projections()).catch_up()
    deliverer = WebhookDeliverer(own_pool, {}, base_delay=timedelta(milliseconds=1))
    async with httpx.AsyncClient() as client:
        while await deliverer.deliver_due(client):
            pass
    async with own_pool.acquire() as conn:
        rows = await conn.fetch("SELECT status, last_error FROM notifications")
    assert len(rows) > 5, "the generated cases should have produced notifications"
    assert all(r["status"] == "failed" and "no webhook URL configured" in r["last_error"] for r in rows)
