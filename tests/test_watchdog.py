"""The deadline watchdog, from outside the engine: one case's timer is suppressed (its workflow terminated
with no terminal event) beside a case whose deadlines are enforced and one whose clock a command stopped; the
watchdog reports exactly the suppressed deadline once it is overdue by its margin, and nothing else, and tells
the operators once per target."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.routes.health import readiness
from api.services import Services
from events.store import EventStore
from observability import metrics
from projections import all_projections
from projections.channels import ChannelsConfig, Senders, WebhookConfig, configuration_problems
from projections.gauges import sample
from projections.runner import Projector
from projections.watchdog import OverdueDeadline, overdue_deadlines
from projections.watchdog_alerts import NOTIFIED_KEPT, claim, notify_operators, record_found, record_sent
from samples.cases import command, open_command
from tests.eventually import assert_eventually
from tests.notification_receivers import HttpSink
from tests.temporal_fixtures import running_worker
from workflows.client import case_handle, open_case_and_wait, send_command
from workflows.core.commands import Acknowledge
from workflows.core.vocabulary import Severity
from workflows.policy_files import load_policy

ROOT = Path(__file__).resolve().parent.parent
SECONDS_POLICY = ROOT / "tests" / "policies" / "seconds.toml"  # a P1 is acknowledged within 4 s
MARGIN = timedelta(seconds=5)
# An overdue deadline as the watchdog finds it, for the tests of the alerts' bookkeeping.
DUE = datetime(2026, 1, 1, tzinfo=UTC)
FOUND = OverdueDeadline("case-1", "acknowledge", 1, DUE, timedelta(minutes=5))


async def test_the_watchdog_reports_exactly_the_suppressed_deadline_within_its_margin(
    dev_env: WorkflowEnvironment, own_db: tuple[asyncpg.Pool, str]
) -> None:
    pool, url = own_db
    policy = load_policy(SECONDS_POLICY)
    stop = asyncio.Event()
    projector = asyncio.create_task(Projector(pool, all_projections(), poll_interval=0.2).run(stop))
    ops, down = HttpSink(), HttpSink()
    down.status = 503
    channels = ChannelsConfig(
        webhooks={"pager": WebhookConfig(url=ops.url + "/ops"), "down": WebhookConfig(url=down.url + "/ops")},
        operators=["webhook:pager", "webhook:down"],
    )
    http = httpx.AsyncClient()
    senders = Senders(channels, http)
    try:
        async with running_worker(dev_env.client, pool, policy) as cases:
            lost, handled, enforced = (open_command(severity=Severity.SEV1) for _ in range(3))
            views = [
                await open_case_and_wait(dev_env.client, c, task_queue=cases.task_queue)
                for c in (lost, handled, enforced)
            ]
            for c in (lost, handled, enforced):
                cases.track(c.case_id)
            # The lost case's timer goes with its workflow: terminated, no terminal event stored.
            await case_handle(dev_env.client, lost.case_id).terminate("the watchdog test suppresses this timer")
            # The handled case's acknowledge clock is stopped by the command that ends it.
            await send_command(dev_env.client, handled.case_id, command(Acknowledge))
            due = views[0].opened_at + timedelta(seconds=4)

            # Overdue, but not yet by the margin: nothing reported, no operator told.
            await asyncio.sleep(max(0.0, (due + MARGIN - timedelta(seconds=2) - datetime.now(UTC)).total_seconds()))
            assert await overdue_deadlines(pool, MARGIN) == []
            assert await notify_operators(pool, senders, MARGIN) == 0

            found = await assert_eventually(
                lambda: overdue_deadlines(pool, MARGIN), lambda overdue: len(overdue) > 0, timeout=20, interval=0.2
            )
            assert [(o.case_id, o.kind, o.level, o.due_at) for o in found] == [(lost.case_id, "acknowledge", 1, due)]
            assert found[0].overdue >= MARGIN
            # The enforced case kept its clocks moving (its breaches stored) and is never reported.
            enforced_events = await EventStore(pool).read_stream(f"escalation-{enforced.case_id}")
            assert any(e.type == "escalation.deadline_breached" for e in enforced_events)

            # The same finding, everywhere it is reported: the gauge, /readyz's detail, the command line.
            async with pool.acquire() as conn:
                await sample(conn, [p.name for p in all_projections()], MARGIN)
            assert metrics.OVERDUE_DEADLINES._value.get() == 1  # noqa: SLF001
            services = Services(pool=pool, client=dev_env.client, policy=policy, task_queue=cases.task_queue)
            ready, checks = await readiness(dataclasses.replace(services, watchdog_margin=MARGIN))
            assert ready, checks  # reported, not taken out of rotation
            assert checks["deadlines"].startswith("1 deadline(s) more than 5 s overdue"), checks
            listed = subprocess.run(
                [sys.executable, "-m", "cli.main", "watchdog", "--margin", "5s"],
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": url, "ESCALATIONS_LOG_LEVEL": "WARNING"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert listed.returncode == 1, listed.stderr
            lines = listed.stdout.strip().splitlines()
            assert len(lines) == 1 and lost.case_id in lines[0] and "acknowledge" in lines[0]
            # The operators are told, once per target: the pager's webhook takes it; the failing one is retried.
            assert await notify_operators(pool, senders, MARGIN) == 1
            alerts = ops.json_bodies("/ops")
            assert [(a["kind"], a["case_id"], a["deadline"], a["level"]) for a in alerts] == [
                ("deadline_overdue", lost.case_id, "acknowledge", 1)
            ]
            assert alerts[0]["due_at"] == due.isoformat()
            failing = await pool.fetchrow("SELECT * FROM watchdog_alerts WHERE target = 'webhook:down'")
            assert failing["notified_at"] is None and failing["attempts"] == 1, dict(failing)
            assert "HTTP 503" in failing["last_error"]
            assert failing["next_attempt_at"] > datetime.now(UTC)  # waits for its retry, not sent every round
            assert await notify_operators(pool, senders, MARGIN) == 0
            assert len(ops.json_bodies("/ops")) == 1  # told once, however many rounds find it
            assert await pool.fetchval("SELECT count(*) FROM watchdog_alerts") == 2  # this deadline, two targets
            # Nothing was written to any case by the watchdog.
            assert len(await EventStore(pool).read_stream(f"escalation-{lost.case_id}")) == 1
    finally:
        stop.set()
        await projector
        await http.aclose()
        ops.close()
        down.close()


def test_an_operator_target_outside_email_chat_and_webhook_is_refused_naming_the_forms() -> None:
    for bad in ("sms:+4912345", "webhook:", "pager"):
        with pytest.raises(ValueError, match="must be email:<address>, chat:<channel> or webhook:<name>"):
            ChannelsConfig(operators=[bad])


async def test_an_operator_target_naming_a_channel_not_configured_is_a_configuration_problem(
    own_pool: asyncpg.Pool,
) -> None:
    config = ChannelsConfig(
        webhooks={"pager": WebhookConfig(url="http://127.0.0.1:9/")},
        operators=["webhook:pager", "webhook:nope", "chat:ops", "email:ops@example.com"],
    )
    problems = [p for p in await configuration_problems(own_pool, config) if "watchdog" in p]
    assert problems == [
        "the deadline watchdog tells operator 'webhook:nope', not configured",
        "the deadline watchdog tells operator 'chat:ops', not configured",
        "the deadline watchdog tells operator 'email:ops@example.com', not configured",
    ]


async def test_an_alert_not_yet_sent_is_forgotten_once_its_deadline_is_no_longer_overdue(
    own_pool: asyncpg.Pool,
) -> None:
    async with own_pool.acquire() as conn:
        await record_found(conn, [FOUND], ["webhook:pager"])
        await record_found(conn, [FOUND], ["webhook:pager"])  # found again: still one row
        assert await conn.fetchval("SELECT count(*) FROM watchdog_alerts") == 1
        await conn.execute("UPDATE watchdog_alerts SET notified_at = now()")  # told
        await record_found(
            conn, [OverdueDeadline("case-2", "resolve", 2, DUE, timedelta(minutes=5))], ["webhook:pager"]
        )
        await record_found(conn, [], ["webhook:pager"])  # case-2's breach came before anyone was told
        rows = await conn.fetch("SELECT case_id, notified_at IS NOT NULL AS told FROM watchdog_alerts")
    assert [(r["case_id"], r["told"]) for r in rows] == [("case-1", True)]  # what was sent stays on record


async def test_a_sent_alert_is_pruned_only_once_its_deadline_has_not_been_overdue_for_its_record_time(
    own_pool: asyncpg.Pool,
) -> None:
    still = OverdueDeadline("case-3", "acknowledge", 1, DUE, timedelta(minutes=5))

    async def cases_on_record() -> list[str]:
        return [r["case_id"] for r in await conn.fetch("SELECT case_id FROM watchdog_alerts ORDER BY case_id")]

    async with own_pool.acquire() as conn:
        await record_found(conn, [FOUND, still], ["webhook:pager"])
        # Both told long ago: age alone prunes nothing.
        await conn.execute("UPDATE watchdog_alerts SET notified_at = now() - 2 * $1::interval", NOTIFIED_KEPT)
        await record_found(conn, [FOUND, still], ["webhook:pager"])
        assert await cases_on_record() == ["case-1", "case-3"]
        # case-1's deadline gets its terminal event: kept, and the moment noted.
        await record_found(conn, [still], ["webhook:pager"])
        assert await cases_on_record() == ["case-1", "case-3"]
        assert await conn.fetchval("SELECT cleared_at IS NOT NULL FROM watchdog_alerts WHERE case_id = 'case-1'")
        # A lagging view finds it overdue again: the clearance is undone, so its record time starts over.
        await record_found(conn, [FOUND, still], ["webhook:pager"])
        assert await conn.fetchval("SELECT cleared_at IS NULL FROM watchdog_alerts WHERE case_id = 'case-1'")
        await record_found(conn, [still], ["webhook:pager"])
        await conn.execute(
            "UPDATE watchdog_alerts SET cleared_at = now() - $1::interval - interval '1 second' "
            "WHERE cleared_at IS NOT NULL",
            NOTIFIED_KEPT,
        )
        await record_found(conn, [still], ["webhook:pager"])
        # case-1 was not overdue for the whole record time: pruned. case-3 stays however old, or the next look
        # would find it and tell the operators again.
        assert await cases_on_record() == ["case-3"]


async def test_a_claimed_alert_is_neither_taken_nor_forgotten_by_another_instance_until_its_lease_ends(
    own_pool: asyncpg.Pool,
) -> None:
    async with own_pool.acquire() as conn:
        await record_found(conn, [FOUND], ["webhook:pager"])
        [first] = await claim(conn)  # one instance starts sending it
        assert await claim(conn) == []  # another finds nothing to take
        await record_found(conn, [], ["webhook:pager"])  # nor forgets it on a view in which it is not overdue
        assert await conn.fetchval("SELECT count(*) FROM watchdog_alerts") == 1
        # The first instance stalled past its lease: the row is claimed again, and only the latest attempt
        # records the outcome.
        await conn.execute("UPDATE watchdog_alerts SET leased_until = now() - interval '1 second'")
        [second] = await claim(conn)
        assert (first["attempts"], second["attempts"]) == (1, 2)
    assert not await record_sent(own_pool, first)
    assert await own_pool.fetchval("SELECT notified_at FROM watchdog_alerts") is None
    assert await record_sent(own_pool, second)
    assert await own_pool.fetchval("SELECT notified_at IS NOT NULL AND leased_until IS NULL FROM watchdog_alerts")
