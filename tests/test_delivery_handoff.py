"""The outbox hands the deliveries it queues leased to the deliverer of its own process, only once their batch
has committed; a handed delivery that is never sent (its process died) is retaken when its lease runs out."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from events.store import EventStore
from projections.channels import ChannelsConfig, WebhookConfig
from projections.delivery import Deliverer
from projections.notifications import NotificationOutboxProjection
from projections.runner import Projector
from samples.cases import Case
from tests.eventually import assert_eventually
from tests.notification_receivers import HttpSink
from workflows.core.events import Customer
from workflows.core.vocabulary import CustomerTier, Severity
from workflows.policy_files import load_policy

TARGETS = ("support", "esc-managers", "directors")
SECONDS_POLICY = Path(__file__).resolve().parent / "policies" / "seconds.toml"


async def _breached_case(pool: asyncpg.Pool) -> str:
    case_id = f"handoff-{uuid.uuid4().hex[:8]}"
    case = Case(
        policy=load_policy(SECONDS_POLICY),  # its levels notify webhook targets
        case_id=case_id,
        severity=Severity.SEV1,
        customer=Customer(id="handoff-co", name="Handoff Co", tier=CustomerTier.STRATEGIC),
    )
    case.advance(timedelta(seconds=10))  # opened, warned, breached, escalated
    await EventStore(pool).append(case.events[0].stream_id, 0, case.events)
    return case_id


async def test_queued_deliveries_are_handed_over_leased_after_commit_and_sent(own_pool: asyncpg.Pool) -> None:
    hooks = HttpSink()
    channels = ChannelsConfig(webhooks={name: WebhookConfig(url=f"{hooks.url}/{name}") for name in TARGETS})
    outbox = NotificationOutboxProjection(channels=channels)
    handed: list[list[asyncpg.Record]] = []
    outbox.hand_to(handed.append, timedelta(seconds=60))
    case_id = await _breached_case(own_pool)
    try:
        await Projector(own_pool, [outbox]).catch_up()
        rows = await own_pool.fetch(
            "SELECT id, attempts, lease_until IS NOT NULL AS leased FROM deliveries WHERE case_id = $1", case_id
        )
        assert rows, "the breach queued deliveries"
        assert all(r["attempts"] == 1 and r["leased"] for r in rows)
        assert sorted(r["id"] for batch in handed for r in batch) == sorted(r["id"] for r in rows)
        # Leased to this process: another deliverer's round finds nothing to take while the lease holds.
        other = Deliverer(own_pool, channels)
        assert await other.lease() == []
        # This process's deliverer sends what it was handed, without a lease round of its own.
        mine = Deliverer(own_pool, channels)
        stop = asyncio.Event()
        running = asyncio.create_task(mine.run(stop, poll_interval=60))
        for batch in handed:
            mine.take(batch)
        await assert_eventually(
            lambda: own_pool.fetchval(
                "SELECT count(*) FROM deliveries WHERE case_id = $1 AND status = 'delivered'", case_id
            ),
            lambda delivered: delivered == len(rows),
        )
        assert len(hooks.by_id) == len(rows)
        stop.set()
        await running
    finally:
        hooks.close()


async def test_a_handed_delivery_never_sent_is_retaken_when_its_lease_runs_out(own_pool: asyncpg.Pool) -> None:
    outbox = NotificationOutboxProjection(channels=ChannelsConfig())
    outbox.hand_to(lambda rows: None, timedelta(seconds=1))  # its process dies before sending
    case_id = await _breached_case(own_pool)
    await Projector(own_pool, [outbox]).catch_up()
    queued = await own_pool.fetchval("SELECT count(*) FROM deliveries WHERE case_id = $1", case_id)
    assert queued > 0
    survivor = Deliverer(own_pool, ChannelsConfig())
    assert await survivor.lease() == []
    await asyncio.sleep(1.2)
    retaken = await survivor.lease()
    assert len(retaken) == queued and all(r["attempts"] == 2 for r in retaken)


async def test_a_batch_that_rolls_back_hands_nothing_over(own_pool: asyncpg.Pool) -> None:
    class Failing(NotificationOutboxProjection):
        async def apply(self, conn: asyncpg.Connection, events: list) -> None:  # type: ignore[override]
            await super().apply(conn, events)
            raise RuntimeError("the batch fails after queueing")

    outbox = Failing(channels=ChannelsConfig())
    handed: list[list[asyncpg.Record]] = []
    outbox.hand_to(handed.append, timedelta(seconds=60))
    case_id = await _breached_case(own_pool)
    with pytest.raises(RuntimeError):
        await Projector(own_pool, [outbox]).catch_up()
    assert handed == []
    assert await own_pool.fetchval("SELECT count(*) FROM deliveries WHERE case_id = $1", case_id) == 0
    # The same batch, applied without the failure, does queue deliveries: the rollback took them back.
    working = NotificationOutboxProjection(channels=ChannelsConfig())
    working.hand_to(handed.append, timedelta(seconds=60))
    await Projector(own_pool, [working]).catch_up()
    assert handed and await own_pool.fetchval("SELECT count(*) FROM deliveries WHERE case_id = $1", case_id) > 0


async def test_a_handed_delivery_with_its_lease_mostly_spent_is_left_to_a_lease_round(own_pool: asyncpg.Pool) -> None:
    """A backlog handed over at once waits for send slots; one whose lease would run out mid-send is not sent
    by the handoff (a lease round would retake it and it would go twice)."""
    hooks = HttpSink()
    channels = ChannelsConfig(webhooks={name: WebhookConfig(url=f"{hooks.url}/{name}") for name in TARGETS})
    outbox = NotificationOutboxProjection(channels=channels)
    handed: list[list[asyncpg.Record]] = []
    outbox.hand_to(handed.append, timedelta(seconds=5))  # far less than half the deliverer's 60 s lease
    case_id = await _breached_case(own_pool)
    try:
        await Projector(own_pool, [outbox]).catch_up()
        deliverer = Deliverer(own_pool, channels)
        stop = asyncio.Event()
        running = asyncio.create_task(deliverer.run(stop, poll_interval=60))
        for batch in handed:
            deliverer.take(batch)
        await asyncio.sleep(1)
        assert hooks.by_id == {}
        assert await own_pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE case_id = $1 AND status = 'pending'", case_id
        ) == sum(len(batch) for batch in handed)
        stop.set()
        await running
    finally:
        hooks.close()
