"""Notifications that reach people, against real servers: an SMTP server (aiosmtpd), Slack-compatible chat
and signed webhook receivers over HTTP, PostgreSQL, the time-skipping Temporal server, and the API."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
import standardwebhooks
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import create_token
from api.services import Services
from events.directory_store import DirectoryStore
from projections import all_projections
from projections.ack_links import AckLinks
from projections.channels import ChannelsConfig, ChatConfig, SmtpConfig, WebhookConfig
from projections.delivery import Deliverer
from projections.runner import Projector
from samples.cases import open_command
from tests.eventually import assert_eventually
from tests.net import free_port
from tests.notification_receivers import HttpSink, MailSink
from tests.temporal_fixtures import running_worker
from workflows.client import open_case_and_wait
from workflows.core.events import Actor, CustomerInput
from workflows.core.policy import Policy
from workflows.core.vocabulary import Role, Severity
from workflows.directory_files import import_directory, team_calendar
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

pytestmark = pytest.mark.timeout(240)
M = timedelta(minutes=1)
ROOT = Path(__file__).resolve().parent.parent
SECRET_NEW = "whsec_" + "bmV3LXNlY3JldC1mb3ItdGhlLXBhZ2VyLTAxMjM0NQ=="
SECRET_OLD = "whsec_" + "b2xkLXNlY3JldC1mb3ItdGhlLXBhZ2VyLTk4NzY1NA=="
DIRECTORY = """
[[people]]
id = "olga"
name = "Olga Owner"
email = "olga@example.com"
chat = "@olga"

[[people]]
id = "mgr"
name = "Maria Manager"
email = "mgr@example.com"
chat = "@maria"
roles = ["manager"]

[[people]]
id = "dir"
name = "Dora Director"
email = "dir@example.com"
roles = ["manager"]

[[people]]
id = "sponsor"
name = "Eve Sponsor"
email = "eve@example.com"
roles = ["executive"]

[[teams]]
id = "platform"
name = "Platform"
members = ["olga"]
escalation_manager = "mgr"
director = "dir"
chat_channel = "platform-room"

[[teams]]
id = "support"
name = "Support"
members = ["olga"]
escalation_manager = "mgr"
director = "dir"

[[teams]]
id = "billing"
name = "Billing"
members = ["olga"]
escalation_manager = "mgr"
director = "dir"

[[accounts]]
id = "bigco"
name = "BigCo"
tier = "strategic"
annual_value = 500000
executive_sponsor = "sponsor"

[directors]
technical = "dir"
"""


def policy_with(give_up_after: str = "24h", pager: bool = False) -> Policy:
    content = load_policy(DEFAULT_POLICY_PATH).content()
    content["notifications"]["give_up_after"] = give_up_after
    if pager:
        content["escalation"]["levels"][1]["notify"] = ["webhook:pager"]
    return Policy.model_validate(content)


@asynccontextmanager
async def notifying(
    env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, config: ChannelsConfig
) -> AsyncIterator[tuple[object, httpx.AsyncClient, Services]]:
    """Worker, projector, deliverer (fast retries) and the API in process, links signed with one secret."""
    await import_directory(
        DirectoryStore(pool, team_calendar), DIRECTORY, actor=Actor(id="root", role=Role.ADMIN), reason="test"
    )
    links = AckLinks("test-link-secret-0123456789", "http://api.test")
    stop = asyncio.Event()
    deliverer = Deliverer(
        pool, config, links=links, base_delay=timedelta(milliseconds=200), max_delay=timedelta(seconds=2)
    )
    tasks = [
        asyncio.create_task(Projector(pool, all_projections(config), poll_interval=0.1).run(stop)),
        asyncio.create_task(deliverer.run(stop, poll_interval=0.05)),
    ]
    try:
        async with running_worker(env.client, pool, policy) as cases:
            services = Services(
                pool=pool, client=env.client, policy=policy, task_queue=cases.task_queue, channels=config, links=links
            )
            app = create_app(services)
            app.state.services = services
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
                yield cases, http, services
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def open_p1(cases, case_id: str) -> None:  # noqa: ANN001
    await open_case_and_wait(
        cases.client,
        open_command(case_id, severity=Severity.SEV1, customer=CustomerInput(id="bigco")),
        task_queue=cases.task_queue,
    )
    cases.track(case_id)


async def deliveries(pool: asyncpg.Pool, case_id: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM deliveries WHERE case_id = $1 ORDER BY created_at, id", case_id)


async def test_a_p1_reaches_its_owner_and_team_a_breach_its_level_2_responders_and_a_link_acknowledges_once(
    time_skipping_env: WorkflowEnvironment, own_pool: asyncpg.Pool
) -> None:
    env, pool = time_skipping_env, own_pool
    mail, chat, hooks = MailSink(free_port()), HttpSink(), HttpSink()
    mail.start()
    config = ChannelsConfig(
        smtp=SmtpConfig(host="127.0.0.1", port=mail.port, start_tls=False),
        chat={"platform-room": ChatConfig(url=chat.url + "/platform")},
        webhooks={"pager": WebhookConfig(url=hooks.url + "/pager", secrets=[SECRET_NEW, SECRET_OLD])},
    )
    try:
        async with notifying(env, pool, policy_with(pager=True), config) as (cases, http, services):
            await open_p1(cases, "n-1")
            # Opened: an email to the routed owner, and one chat message to the team's room.
            await assert_eventually(lambda: asyncio.sleep(0, mail.to("olga@example.com")), lambda m: len(m) == 1)
            await assert_eventually(lambda: asyncio.sleep(0, chat.json_bodies("/platform")), lambda b: len(b) == 1)
            assert "Checkout down" in chat.json_bodies("/platform")[0]["text"]
            # A link acknowledges as its person: never posted into a room others read.
            assert not any("/v1/ack/" in b["text"] for b in chat.json_bodies("/platform"))

            # Nobody acknowledges within 15 minutes: level 2 (the escalation manager) hears by email and chat.
            await env.sleep(16 * M)
            mgr_mail = await assert_eventually(
                lambda: asyncio.sleep(0, mail.to("mgr@example.com")), lambda m: len(m) == 1
            )
            await assert_eventually(
                lambda: asyncio.sleep(0, [b for b in chat.json_bodies("/platform") if "@maria" in b["text"]]),
                lambda b: len(b) == 1,
            )
            body = mgr_mail[0].get_payload(decode=True).decode()
            assert "escalated from level 1 to level 2" in mgr_mail[0]["Subject"]
            link = re.search(r"http://api\.test(/v1/ack/\S+)", body)
            assert link is not None, body
            # The link acknowledges as the manager; a second click is refused and writes nothing.
            page = await http.get(link.group(1))
            assert page.status_code == 200 and "Acknowledge case n-1 as mgr" in page.text
            first = await http.post(link.group(1))
            assert first.status_code == 200, first.text
            ack = [e for e in first.json()["events"] if e["data"]["type"] == "escalation.acknowledged"]
            assert [(e["actor"]["id"], e["actor"]["role"]) for e in ack] == [("mgr", "manager")]
            again = await http.post(link.group(1))
            assert again.status_code == 410 and again.json()["rule"] == "ack_link.used"
            forged = await http.post(link.group(1)[:-3] + "abc")
            assert forged.status_code == 401 and forged.json()["rule"] == "ack_link.forged"
            expired_links = AckLinks("test-link-secret-0123456789", "http://api.test", ttl=timedelta(seconds=-1))
            expired = await http.post("/v1/ack/" + expired_links.token("n-1", "mgr", "nonce-x"))
            assert expired.status_code == 410 and expired.json()["rule"] == "ack_link.expired"
            versions = [
                e["version"]
                for e in (
                    await http.get(
                        "/v1/escalations/n-1/audit",
                        headers={"Authorization": f"Bearer {await create_token(pool, 'aud', Role.AUDITOR)}"},
                    )
                ).json()["events"]
            ]
            assert len(versions) == len(set(versions))

            # The level-2 webhook target is signed as Standard Webhooks says, with both secrets during rotation.
            signed = await assert_eventually(lambda: asyncio.sleep(0, list(hooks.requests)), lambda r: len(r) >= 1)
            for request in signed:
                headers = {k.lower(): v for k, v in request["headers"].items()}
                for secret in (SECRET_NEW, SECRET_OLD):
                    standardwebhooks.Webhook(secret).verify(request["body"], headers)
                wrong = "whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0wMDAwMA=="
                with pytest.raises(standardwebhooks.WebhookVerificationError):
                    standardwebhooks.Webhook(wrong).verify(request["body"], headers)

            # The inbox holds them too, with an unread count.
            token = await create_token(pool, "mgr", Role.MANAGER)
            box = (await http.get("/v1/inbox", headers={"Authorization": f"Bearer {token}"})).json()
            assert box["unread"] >= 1 and all(i["case_id"] == "n-1" for i in box["items"])
            rows = await deliveries(pool, "n-1")
            assert {(r["recipient"], r["channel"]) for r in rows} >= {
                ("olga", "email"),
                ("team:platform", "chat"),
                ("mgr", "email"),
                ("mgr", "chat"),
                ("mgr", "inbox"),
            }
    finally:
        mail.stop()
        chat.close()
        hooks.close()


async def test_an_smtp_outage_delays_notifications_and_loses_or_repeats_none(
    time_skipping_env: WorkflowEnvironment, own_pool: asyncpg.Pool
) -> None:
    env, pool = time_skipping_env, own_pool
    mail = MailSink(free_port())
    mail.start()
    config = ChannelsConfig(smtp=SmtpConfig(host="127.0.0.1", port=mail.port, start_tls=False))
    try:
        async with notifying(env, pool, policy_with(), config) as (cases, _, _):
            await open_p1(cases, "out-1")
            await assert_eventually(lambda: asyncio.sleep(0, mail.to("olga@example.com")), lambda m: len(m) == 1)
            # No transaction or row lock is held while a message is sent: the server takes 2 s per message.
            mail.delay = 2.0
            await env.sleep(16 * M)  # level 2
            # Sampled while sends are under way: a transaction held across one would sit idle for seconds
            # (between two statements, any transaction is briefly idle: those last milliseconds).
            held = []
            for _ in range(20):
                held += await pool.fetch(
                    "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction' AND now() - state_change > interval '1 second'"
                )
                await asyncio.sleep(0.1)
            assert held == []
            await assert_eventually(lambda: asyncio.sleep(0, mail.to("mgr@example.com")), lambda m: len(m) == 1)
            mail.delay = 0.0

            mail.stop()  # no SMTP while the case breaches up the matrix, until sending has failed
            await env.sleep(15 * M)  # level 3: the director
            await env.sleep(15 * M)  # level 4: the account's executive sponsor
            await assert_eventually(  # the outage was felt
                lambda: pool.fetchval(
                    "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
                    "WHERE d.case_id = 'out-1' AND a.outcome = 'failed'"
                ),
                lambda failed: failed > 0,
                timeout=60,
            )
            mail.start()
            emails = await assert_eventually(
                lambda: pool.fetch("SELECT id, status FROM deliveries WHERE case_id = 'out-1' AND channel = 'email'"),
                lambda rows: rows and all(r["status"] == "delivered" for r in rows),
                timeout=60,
            )
            received = {key.strip("<>").removesuffix("@escalations") for key in mail.messages}
            assert {str(r["id"]) for r in emails} == received  # every one arrived
            assert all(n == 1 for n in mail.seen.values()), mail.seen  # and none twice
            assert mail.to("dir@example.com") and mail.to("eve@example.com")
    finally:
        mail.stop()


async def test_a_dead_letter_is_listed_and_re_driven_from_the_shell(
    time_skipping_env: WorkflowEnvironment, own_db: tuple[asyncpg.Pool, str]
) -> None:
    pool, url = own_db
    hooks = HttpSink()
    hooks.status = 500  # the pager's receiver is broken
    config = ChannelsConfig(webhooks={"pager": WebhookConfig(url=hooks.url + "/pager", secrets=[SECRET_NEW])})
    try:
        async with notifying(time_skipping_env, pool, policy_with(give_up_after="1s", pager=True), config) as (
            cases,
            http,
            _,
        ):
            await open_p1(cases, "dead-1")
            await time_skipping_env.sleep(16 * M)
            dead = await assert_eventually(
                lambda: pool.fetch("SELECT id FROM deliveries WHERE case_id = 'dead-1' AND status = 'dead'"),
                lambda rows: len(rows) >= 1,
            )
            token = await create_token(pool, "ops-dead", Role.AUDITOR)
            listed = (await http.get("/v1/deliveries?status=dead", headers={"Authorization": f"Bearer {token}"})).json()
            shown = next(d for d in listed["deliveries"] if d["id"] == str(dead[0]["id"]))
            assert shown["history"] and shown["history"][-1]["outcome"] == "dead" and "HTTP 500" in shown["last_error"]
            refused = await http.post(
                f"/v1/deliveries/{dead[0]['id']}/redrive", headers={"Authorization": f"Bearer {token}"}
            )
            assert refused.status_code == 403 and refused.json()["rule"] == "permission.redrive"
            hooks.status = 200  # repaired
            done = await asyncio.to_thread(
                subprocess.run,
                [Path(sys.executable).parent / "escalations", "deliveries", "redrive", str(dead[0]["id"])],
                env={"DATABASE_URL": url, "PATH": "/usr/bin:/bin", "ESCALATIONS_LOG_LEVEL": "WARNING"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            await assert_eventually(
                lambda: pool.fetchval("SELECT status FROM deliveries WHERE id = $1", dead[0]["id"]),
                lambda status: status == "delivered",
            )
            assert str(dead[0]["id"]) in hooks.by_id.get(f"msg_{dead[0]['id']}", {}).get("headers", {}).get(
                "webhook-id", ""
            )
    finally:
        hooks.close()
