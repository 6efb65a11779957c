"""Webhook delivery against a real local HTTP server that fails the first attempts; unconfigured targets."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import pytest

from events.store import EventStore
from projections import all_projections
from projections.channels import ChannelsConfig, Senders, WebhookConfig, configuration_problems
from projections.delivery import Deliverer
from projections.runner import Projector
from samples.cases import Case
from samples.histories import append_history
from tests.api_support import API_POLICY
from workflows.core.vocabulary import Severity
from workflows.policy_files import load_policy

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
                key = self.headers["webhook-id"].removeprefix("msg_")
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


def breaching_cases(count: int) -> list[list]:
    """P1 cases under a policy whose every level notifies a webhook target, left to breach for 3 hours."""
    policy = load_policy(API_POLICY)
    histories = []
    for i in range(count):
        case = Case(
            policy=policy, case_id=f"hook-{i}", severity=Severity.SEV1, start=datetime.now(UTC) - timedelta(hours=4)
        )
        case.advance(timedelta(hours=3))
        histories.append(case.events)
    return histories


def deliverer(pool: asyncpg.Pool, config: ChannelsConfig) -> Deliverer:
    return Deliverer(pool, config, base_delay=timedelta(milliseconds=20), max_delay=timedelta(milliseconds=200))


async def deliver_until(pool: asyncpg.Pool, worker: Deliverer, done: str) -> None:
    async with httpx.AsyncClient() as http:
        senders = Senders(worker.config, http)
        for _ in range(400):
            await worker.deliver_due(senders)
            if await pool.fetchval(done):
                return
            await asyncio.sleep(0.03)
    raise AssertionError(f"not done: {done}")


async def test_every_webhook_notification_arrives_despite_failures_with_one_id_and_body(
    own_pool: asyncpg.Pool, receiver: FlakyReceiver
) -> None:
    await append_history(EventStore(own_pool), breaching_cases(4))
    await Projector(own_pool, all_projections()).catch_up()
    rows = await own_pool.fetch("SELECT id, recipient FROM deliveries WHERE channel = 'webhook'")
    targets = {r["recipient"] for r in rows}
    assert len(rows) > 20 and targets <= {
        "webhook:support",
        "webhook:esc-managers",
        "webhook:directors",
        "webhook:exec-sponsor",
    }
    hooks = {
        t.removeprefix("webhook:"): WebhookConfig(url=f"{receiver.url}/{t.removeprefix('webhook:')}") for t in targets
    }
    await deliver_until(
        own_pool,
        deliverer(own_pool, ChannelsConfig(webhooks=hooks)),
        "SELECT count(*) = 0 FROM deliveries WHERE channel = 'webhook' AND status <> 'delivered'",
    )
    assert {key.split()[0] for key in receiver.delivered} == {str(r["id"]) for r in rows}
    # Each was retried after its failures, always with the same id (and body: the receiver kept the first).
    assert all(count == FAILURES_PER_KEY + 1 for count in receiver.attempts.values())
    attempts = await own_pool.fetch(
        "SELECT delivery_id, array_agg(outcome ORDER BY attempt) AS outcomes FROM delivery_attempts GROUP BY 1"
    )
    assert {tuple(a["outcomes"]) for a in attempts} == {("failed",) * FAILURES_PER_KEY + ("delivered",)}


async def test_a_target_not_configured_waits_is_reported_and_goes_once_configured(
    own_pool: asyncpg.Pool, receiver: FlakyReceiver
) -> None:
    await append_history(EventStore(own_pool), breaching_cases(2))
    await Projector(own_pool, all_projections()).catch_up()
    worker = deliverer(own_pool, ChannelsConfig())
    async with httpx.AsyncClient() as http:
        for _ in range(3):
            await worker.deliver_due(Senders(worker.config, http))
            await asyncio.sleep(0.25)
    rows = await own_pool.fetch("SELECT status, last_error FROM deliveries WHERE channel = 'webhook'")
    assert len(rows) > 5
    assert all(r["status"] == "pending" and r["last_error"].startswith("not configured") for r in rows)
    problems = await configuration_problems(own_pool, ChannelsConfig(), load_policy(API_POLICY))
    assert any("notifies 'webhook:support', not configured" in p for p in problems)
    assert any("webhook deliveries to 'webhook:support' wait: not configured" in p for p in problems)
    # Configured now: every waiting delivery goes (never a silent, final "failed").
    names = ("support", "esc-managers", "directors", "exec-sponsor")
    configured = ChannelsConfig(webhooks={n: WebhookConfig(url=f"{receiver.url}/{n}") for n in names})
    await deliver_until(
        own_pool,
        deliverer(own_pool, configured),
        "SELECT count(*) = 0 FROM deliveries WHERE channel = 'webhook' AND status <> 'delivered'",
    )
    assert await configuration_problems(own_pool, configured, load_policy(API_POLICY)) == []


async def test_quiet_hours_hold_back_email_but_not_the_inbox_and_never_a_p1(own_pool: asyncpg.Pool) -> None:
    from events.directory_store import DirectoryStore
    from projections.channels import SmtpConfig
    from samples.cases import command
    from workflows.core.commands import AssignOwner
    from workflows.core.events import Actor
    from workflows.core.vocabulary import Role
    from workflows.directory_files import import_directory, team_calendar
    from workflows.policy_files import DEFAULT_POLICY_PATH

    now = datetime.now(UTC)
    quiet_from, quiet_to = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=2)).strftime("%H:%M")
    await import_directory(
        DirectoryStore(own_pool, team_calendar),
        f'[[people]]\nid = "owl"\nname = "Owl"\nemail = "owl@example.com"\ntime_zone = "UTC"\n'
        f'quiet_hours = {{ start = "{quiet_from}", end = "{quiet_to}" }}\n',
        actor=Actor(id="root", role=Role.ADMIN),
        reason="test",
    )
    policy = load_policy(DEFAULT_POLICY_PATH)
    histories = []
    for case_id, severity in (("quiet-p1", Severity.SEV1), ("quiet-p3", Severity.SEV4)):  # strategic: P1 and P3
        case = Case(policy=policy, case_id=case_id, severity=severity, start=now - timedelta(minutes=1))
        case.do(command(AssignOwner, owner="owl"))
        histories.append(case.events)
    await append_history(EventStore(own_pool), histories)
    config = ChannelsConfig(smtp=SmtpConfig(host="127.0.0.1", port=1))
    await Projector(own_pool, all_projections(config)).catch_up()
    rows = {
        (r["case_id"], r["channel"]): r
        for r in await own_pool.fetch(
            "SELECT case_id, channel, created_at, next_attempt_at FROM deliveries WHERE recipient = 'owl' AND kind = 'assigned'"
        )
    }
    assert set(rows) == {("quiet-p1", "email"), ("quiet-p1", "inbox"), ("quiet-p3", "email"), ("quiet-p3", "inbox")}
    for key in (("quiet-p1", "email"), ("quiet-p1", "inbox"), ("quiet-p3", "inbox")):
        assert rows[key]["next_attempt_at"] == rows[key]["created_at"], key  # at once
    held = rows[("quiet-p3", "email")]["next_attempt_at"]
    assert held > now + timedelta(hours=1) and held.strftime("%H:%M") == quiet_to  # when the quiet hours end


async def test_a_case_opened_before_the_outbox_kept_snapshots_still_notifies(own_pool: asyncpg.Pool) -> None:
    """A case whose opening was projected by the earlier outbox (no snapshot, no rules): its later breaches
    still reach its levels' webhook targets, the outbox folding its stream once."""
    [events] = breaching_cases(1)
    store = EventStore(own_pool)
    await store.append(events[0].stream_id, 0, events[:1])
    await Projector(own_pool, all_projections()).catch_up()
    await own_pool.execute("UPDATE notification_cases SET snapshot = NULL, rules = NULL, levels = NULL")
    await store.append(events[0].stream_id, 1, events[1:])
    await Projector(own_pool, all_projections()).catch_up()
    kinds = {r["kind"] for r in await own_pool.fetch("SELECT kind FROM deliveries WHERE channel = 'webhook'")}
    assert {"breach", "escalated"} <= kinds
    assert await own_pool.fetchval("SELECT snapshot IS NOT NULL FROM notification_cases") is True
