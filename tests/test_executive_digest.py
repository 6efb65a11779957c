"""The executive digest, run by its Temporal Schedule on the dev server: the open P1 and its breach, in the
kept digest and in each executive's inbox."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from events.directory_store import DirectoryStore
from events.store import EventStore
from projections import all_projections
from projections.runner import Projector
from samples.cases import open_command
from tests.eventually import assert_eventually
from tests.temporal_fixtures import running_worker
from workflows.client import open_case_and_wait
from workflows.core.events import Actor, Customer, DeadlineBreached, stream_id_for
from workflows.core.vocabulary import CustomerTier, Role, Severity
from workflows.digest_workflow import DIGEST_SCHEDULE_ID, ensure_digest_schedule
from workflows.directory_files import import_directory, team_calendar
from workflows.policy_files import load_policy

CONSOLE_POLICY = Path(__file__).resolve().parent / "policies" / "console.toml"  # a P1 is acknowledged within 8 s


async def test_the_scheduled_digest_lists_the_open_p1_and_its_breach(
    dev_env: WorkflowEnvironment, own_pool: asyncpg.Pool
) -> None:
    pool = own_pool
    await import_directory(
        DirectoryStore(pool, team_calendar),
        '[[people]]\nid = "ceo"\nname = "Chief Executive"\nemail = "ceo@example.com"\nroles = ["executive"]\n',
        actor=Actor(id="root", role=Role.ADMIN),
        reason="test",
    )
    store = EventStore(pool)
    async with running_worker(dev_env.client, pool, load_policy(CONSOLE_POLICY)) as cases:
        opening = open_command(
            "digest-p1",
            severity=Severity.SEV1,
            customer=Customer(id="megacorp", name="MegaCorp", tier=CustomerTier.STRATEGIC),
        )
        await open_case_and_wait(cases.client, opening, task_queue=cases.task_queue)
        cases.track("digest-p1")
        await assert_eventually(
            lambda: store.read_stream(stream_id_for("digest-p1")),
            lambda events: any(isinstance(e.data, DeadlineBreached) for e in events),
            timeout=30,
        )
        await Projector(pool, all_projections()).catch_up()
        await ensure_digest_schedule(dev_env.client, cases.task_queue, timedelta(hours=24))
        schedule = dev_env.client.get_schedule_handle(DIGEST_SCHEDULE_ID)
        try:
            await schedule.trigger()
            digest = await assert_eventually(
                lambda: pool.fetchval("SELECT digest FROM executive_digests ORDER BY id DESC LIMIT 1"),
                lambda found: found is not None,
                timeout=30,
            )
        finally:
            await schedule.delete()
    digest = json.loads(digest)
    assert [c["case_id"] for c in digest["open_top_priority_cases"]] == ["digest-p1"]
    assert [(b["case_id"], b["kind"], b["level"]) for b in digest["breaches"]][:1] == [("digest-p1", "acknowledge", 1)]
    inbox = await assert_eventually(
        lambda: pool.fetch(
            "SELECT message->>'subject' AS subject, recipient FROM deliveries "
            "WHERE kind = 'executive_digest' AND channel = 'inbox'"
        ),
        lambda rows: len(rows) == 1,
    )
    assert inbox[0]["recipient"] == "ceo" and "1 open P1/P2" in inbox[0]["subject"]
