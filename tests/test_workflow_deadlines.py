"""Deadlines as durable timers, on the time-skipping server (30 days pass in well under a second)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from temporalio.testing import WorkflowEnvironment

from events.memory import InMemoryEventStore
from events.store import EventStore
from samples.cases import MANAGER, command, open_command
from tests.temporal_fixtures import running_worker
from workflows.client import case_state, send_command
from workflows.core.case_view import case_view
from workflows.core.commands import (
    Acknowledge,
    Close,
    Pause,
    ProposeResolution,
    RecordCustomerResponse,
    Resume,
    Withdraw,
)
from workflows.core.events import Customer, DeadlineBreached, Escalated, RecordedEvent, stream_id_for
from workflows.core.evolve import fold
from workflows.core.policy import Policy
from workflows.core.vocabulary import CustomerTier, DeadlineKind, PauseReason, RootCause, Severity, WithdrawReason

M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
# The time-skipping server fires a timer at its instant; allow for the task round trip.
MAX_LATENESS = timedelta(seconds=2)


def breaches(events: list[RecordedEvent], kind: DeadlineKind | None = None) -> list[DeadlineBreached]:
    return [e.data for e in events if isinstance(e.data, DeadlineBreached) and kind in (None, e.data.kind)]


def opened_at(events: list[RecordedEvent]):
    return events[0].occurred_at


async def test_unacknowledged_p1_escalates_l1_to_l4_at_the_policy_intervals_then_repeats(
    time_skipping_env: WorkflowEnvironment, policy: Policy
) -> None:
    env = time_skipping_env
    store = InMemoryEventStore()  # the subject is the timers, not PostgreSQL
    async with running_worker(env.client, None, policy, store=store) as cases:
        opening = open_command()  # sev1 x strategic -> P1: acknowledge within 15m, repeat hourly at the top
        await cases.open(opening)
        await env.sleep(3 * H + 5 * M)
        events = await store.read_stream(stream_id_for(opening.case_id))
        start = opened_at(events)
        ack = breaches(events, DeadlineKind.ACKNOWLEDGE)
        assert [b.due_at - start for b in ack] == [15 * M, 30 * M, 45 * M, 60 * M, 2 * H, 3 * H]
        assert [b.level for b in ack] == [1, 2, 3, 4, 4, 4]
        assert all(timedelta(0) <= b.detected_at - b.due_at <= MAX_LATENESS for b in ack)
        escalations = [(e.data.from_level, e.data.to_level) for e in events if isinstance(e.data, Escalated)]
        assert escalations == [(1, 2), (2, 3), (3, 4)]
        # Each non-repeat breach is preceded by its warning at 75% of the span.
        types = [e.type.removeprefix("escalation.") for e in events]
        assert types[:4] == ["opened", "deadline_warning", "deadline_breached", "escalated"]
        warnings = [e.data for e in events if e.type == "escalation.deadline_warning"]
        assert len(warnings) == 4
        for warning in warnings:
            first_breach_after = next(b for b in ack if b.due_at == warning.due_at)
            assert warning.detected_at < first_breach_after.detected_at
        assert await case_state(env.client, opening.case_id) == case_view(fold(events))


async def test_a_pause_moves_the_resolution_deadline_by_exactly_the_paused_time(
    time_skipping_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    env = time_skipping_env
    async with running_worker(env.client, pool, policy) as cases:
        # sev3 x enterprise -> P3: resolve within 14 days, no update cadence.
        opening = open_command(
            severity=Severity.SEV3, customer=Customer(id="globex", name="Globex", tier=CustomerTier.ENTERPRISE)
        )
        await cases.open(opening)
        await send_command(env.client, opening.case_id, command(Acknowledge))
        await send_command(env.client, opening.case_id, command(Pause, reason=PauseReason.WAITING_ON_CUSTOMER))
        await env.sleep(3 * D)
        assert breaches(await store.read_stream(stream_id_for(opening.case_id))) == []
        await send_command(env.client, opening.case_id, command(Resume))
        await env.sleep(14 * D + M)
        events = await store.read_stream(stream_id_for(opening.case_id))
        paused = next(e for e in events if e.type == "escalation.paused").occurred_at
        resumed = next(e for e in events if e.type == "escalation.resumed").occurred_at
        [resolve] = breaches(events, DeadlineKind.RESOLVE)
        assert resolve.due_at == opened_at(events) + 14 * D + (resumed - paused)
        assert resumed - paused >= 3 * D
        assert timedelta(0) <= resolve.detected_at - resolve.due_at <= MAX_LATENESS


async def test_a_case_open_for_thirty_days_breaches_its_resolution_target(
    time_skipping_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    env = time_skipping_env
    async with running_worker(env.client, pool, policy) as cases:
        # sev4 x standard -> P4: the longest target the policy allows, 30 days.
        opening = open_command(
            severity=Severity.SEV4, customer=Customer(id="tiny", name="Tiny", tier=CustomerTier.STANDARD)
        )
        await cases.open(opening)
        await send_command(env.client, opening.case_id, command(Acknowledge))
        await env.sleep(29 * D)
        assert breaches(await store.read_stream(stream_id_for(opening.case_id)), DeadlineKind.RESOLVE) == []
        await env.sleep(1 * D + 1 * M)
        events = await store.read_stream(stream_id_for(opening.case_id))
        [resolve] = breaches(events, DeadlineKind.RESOLVE)
        assert resolve.due_at == opened_at(events) + 30 * D
        assert events[-1].type == "escalation.escalated" and events[-1].data.to_level == 2
        warning = next(e.data for e in events if e.type == "escalation.deadline_warning" and e.data.kind == "resolve")
        assert warning.detected_at < resolve.detected_at


async def test_follow_up_fires_after_resolution(
    time_skipping_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    env = time_skipping_env
    async with running_worker(env.client, pool, policy) as cases:
        opening = open_command(severity=Severity.SEV4)  # strategic -> P3: follow up 14 days after resolution
        await cases.open(opening)
        await send_command(env.client, opening.case_id, command(Acknowledge))
        await send_command(
            env.client,
            opening.case_id,
            command(
                ProposeResolution,
                summary="Fixed the sync job.",
                root_cause=RootCause.CONFIGURATION,
                root_cause_text="cron",
            ),
        )
        result = await send_command(env.client, opening.case_id, command(RecordCustomerResponse, accepted=True))
        resolved_at = result.events[-1].occurred_at
        await env.sleep(13 * D)
        events = await store.read_stream(stream_id_for(opening.case_id))
        assert "escalation.follow_up_due" not in [e.type for e in events]
        await env.sleep(1 * D + 1 * M)
        events = await store.read_stream(stream_id_for(opening.case_id))
        due = [e.data for e in events if e.type == "escalation.follow_up_due"]
        assert len(due) == 1 and due[0].due_at == resolved_at + 14 * D
        assert await case_state(env.client, opening.case_id) == case_view(fold(events))


async def test_a_closed_case_finishes_when_its_reopen_window_ends_and_a_withdrawn_one_at_once(
    time_skipping_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    env = time_skipping_env
    async with running_worker(env.client, pool, policy) as cases:
        closing, withdrawing = open_command(severity=Severity.SEV4), open_command()
        closed_handle = await cases.open(closing)
        withdrawn_handle = await cases.open(withdrawing)
        await send_command(env.client, closing.case_id, command(Acknowledge))
        await send_command(
            env.client,
            closing.case_id,
            command(ProposeResolution, summary="Done.", root_cause=RootCause.PROCESS, root_cause_text="handover"),
        )
        await send_command(env.client, closing.case_id, command(RecordCustomerResponse, accepted=True))
        await send_command(env.client, closing.case_id, command(Close))
        await send_command(
            env.client, withdrawing.case_id, command(Withdraw, actor=MANAGER, reason=WithdrawReason.DUPLICATE)
        )
        withdrawn = await withdrawn_handle.result()
        assert withdrawn.status == "withdrawn"
        final = await closed_handle.result()  # time skips to the end of the 30-day reopen window
        events = await store.read_stream(stream_id_for(closing.case_id))
        assert final == case_view(fold(events)) and final.status == "closed"
        resolved_at = next(e.occurred_at for e in events if e.type == "escalation.resolved")
        assert (await env.get_current_time()) >= resolved_at + policy.reopen_window
