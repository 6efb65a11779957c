"""End to end on the time-skipping server: a P1 opened on Friday at 17:55 New York time with a
2-working-hour acknowledge deadline breaches on the next working day at 11:00, also when that day
is a holiday, and across a DST change.

The test works from whatever date the test server starts at: it finds the next Friday (and the
next Friday before a spring or autumn change), and closes the following Monday by a dated
exception in a policy written for the run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore
from samples.cases import open_command
from tests.temporal_fixtures import running_worker, start_time_skipping_server
from workflows.client import case_handle, case_state
from workflows.core.case_view import case_view
from workflows.core.events import Customer, DeadlineBreached, DeadlineWarning, stream_id_for
from workflows.core.evolve import fold
from workflows.core.vocabulary import CustomerTier, DeadlineKind
from workflows.policy_files import load_policy

NEW_YORK = ZoneInfo("America/New_York")
POLICY_TEMPLATE = Path(__file__).parent / "policies" / "business.toml"
MAX_LATENESS = timedelta(seconds=2)


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own: this test moves the clock months ahead."""
    environment = await start_time_skipping_server()
    yield environment
    await environment.shutdown()


def friday_evening_after(instant: datetime) -> datetime:
    day = instant.astimezone(NEW_YORK).date() + timedelta(days=1)
    while day.weekday() != 4:
        day += timedelta(days=1)
    return datetime.combine(day, time(17, 55), NEW_YORK)


def friday_before_next_dst_change(instant: datetime) -> datetime:
    friday = friday_evening_after(instant)
    while friday.utcoffset() == (friday + timedelta(days=3)).astimezone(NEW_YORK).utcoffset():
        friday = friday_evening_after(friday)
    return friday


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), NEW_YORK).astimezone(UTC)


def next_working_day(friday: datetime, closed: set[date]) -> date:
    day = friday.date() + timedelta(days=3)
    while day in closed or day.weekday() >= 5:
        day += timedelta(days=1)
    return day


async def test_friday_1755_plus_two_working_hours_breaches_at_1100_on_the_next_working_day(
    env: WorkflowEnvironment, pool: asyncpg.Pool, store: EventStore, tmp_path: Path
) -> None:
    now = await env.get_current_time()
    friday = friday_evening_after(now)
    dst_friday = friday_before_next_dst_change(friday + timedelta(days=7))
    monday = friday.date() + timedelta(days=3)
    policy_file = tmp_path / "business.toml"
    # The second calendar closes the Monday after the first Friday by a dated exception.
    policy_file.write_text(POLICY_TEMPLATE.read_text().replace('"2026-11-30"', f'"{monday.isoformat()}"'))
    policy = load_policy(policy_file)
    holidays = set(policy.calendars["new-york"].closed)
    store_holidays = holidays | {monday}

    def customer(calendar: str | None) -> Customer:
        return Customer(id="acme", name="ACME", tier=CustomerTier.STRATEGIC, calendar=calendar)

    async def first_breach_and_warning(case_id: str) -> tuple[DeadlineBreached, DeadlineWarning]:
        events = await store.read_stream(stream_id_for(case_id))
        assert await case_state(env.client, case_id) == case_view(fold(events))
        breach = next(e.data for e in events if isinstance(e.data, DeadlineBreached))
        warning = next(e.data for e in events if isinstance(e.data, DeadlineWarning))
        assert breach.kind == warning.kind == DeadlineKind.ACKNOWLEDGE
        assert timedelta(0) <= breach.detected_at - breach.due_at <= MAX_LATENESS
        return breach, warning

    async with running_worker(env.client, pool, policy) as cases:
        await env.sleep(friday - now)
        usual, closed_monday = (
            open_command(customer=customer(None)),
            open_command(customer=customer("new-york-office-closed")),
        )
        await cases.open(usual)
        await cases.open(closed_monday)
        await env.sleep(timedelta(days=5))

        expected_day = next_working_day(friday, holidays)
        breach, warning = await first_breach_and_warning(usual.case_id)
        assert breach.due_at == at_local(expected_day, 11), (friday, breach)
        assert warning.detected_at >= at_local(expected_day, 10, 30)  # 75% of 2 working hours

        breach, _ = await first_breach_and_warning(closed_monday.case_id)
        assert breach.due_at == at_local(next_working_day(friday, store_holidays), 11)
        assert breach.due_at.astimezone(NEW_YORK).date() > monday

        # Across a DST change: 11:00 local on the new offset, not the old one. The first two
        # cases end first: months of hourly repeats at the top would each cost a workflow task.
        for case_id in (usual.case_id, closed_monday.case_id):
            await case_handle(env.client, case_id).terminate("checked")
        now = await env.get_current_time()
        await env.sleep(dst_friday - now)
        across = open_command(customer=customer(None))
        await cases.open(across)
        await env.sleep(timedelta(days=5))
        breach, _ = await first_breach_and_warning(across.case_id)
        day = next_working_day(dst_friday, holidays)
        assert breach.due_at == at_local(day, 11)
        assert breach.due_at.astimezone(NEW_YORK).utcoffset() != dst_friday.utcoffset()
