"""Business-time arithmetic: DST in four kinds of zone, weekends, holidays, overnight hours, and a property test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.calendar_source import resolve_calendar
from workflows.core.calendar import WEEKDAYS, BusinessCalendar
from workflows.core.vocabulary import DeadlineKind

H, M = timedelta(hours=1), timedelta(minutes=1)
OFFICE = {day: ["09:00-17:00"] for day in WEEKDAYS[:5]}
ALWAYS = {day: ["00:00-00:00"] for day in WEEKDAYS}  # every day, round the clock
NIGHTS = {day: ["22:00-06:00"] for day in WEEKDAYS[:5]}  # Monday to Friday nights, crossing midnight


def calendar(zone: str, hours: dict[str, list[str]], **spec: object) -> BusinessCalendar:
    return BusinessCalendar.model_validate(resolve_calendar(zone, {"time_zone": zone, "hours": hours, **spec}))


def local(zone: str, *fields: int) -> datetime:
    return datetime(*fields, tzinfo=ZoneInfo(zone))


# (zone, a local instant just before the change, local wall-clock hours that vanish (-) or repeat (+))
DST_CHANGES = [
    ("America/New_York", (2027, 3, 14, 0, 0), timedelta(hours=-1)),  # spring forward 02:00 -> 03:00
    ("America/New_York", (2026, 11, 1, 0, 0), timedelta(hours=1)),  # fall back 02:00 -> 01:00
    ("Europe/London", (2027, 3, 28, 0, 0), timedelta(hours=-1)),
    ("Europe/London", (2026, 10, 25, 0, 0), timedelta(hours=1)),
    ("Australia/Lord_Howe", (2026, 10, 4, 0, 0), timedelta(minutes=-30)),  # a half-hour shift
    ("Australia/Lord_Howe", (2027, 4, 4, 0, 0), timedelta(minutes=30)),
    ("Asia/Kolkata", (2027, 3, 14, 0, 0), timedelta(0)),  # no DST at all
]


@pytest.mark.parametrize(("zone", "before", "shift"), DST_CHANGES, ids=[f"{z} {b[:3]}" for z, b, _ in DST_CHANGES])
def test_working_time_across_a_dst_change_is_real_elapsed_time(
    zone: str, before: tuple[int, ...], shift: timedelta
) -> None:
    always = calendar(zone, ALWAYS)
    start = local(zone, *before)
    # 24 working hours on a round-the-clock calendar are 24 real hours, whatever the wall clock says.
    due = always.add(start, 24 * H)
    assert due - start == 24 * H
    assert due.astimezone(ZoneInfo(zone)).replace(tzinfo=None) - start.replace(tzinfo=None) == 24 * H - shift
    assert always.between(start, due) == 24 * H


def test_a_night_shift_across_spring_forward_is_an_hour_shorter() -> None:
    nights = calendar("America/New_York", {"sat": ["22:00-06:00"]})
    start = local("America/New_York", 2027, 3, 13, 22, 0)  # the night of the change
    end = local("America/New_York", 2027, 3, 14, 6, 0)
    assert nights.between(start, end) == 7 * H  # 22:00 EST to 06:00 EDT
    assert nights.add(start, 7 * H) == end
    # The next night is a week later: an 8th hour lands at 23:00 the Saturday after.
    assert nights.add(start, 8 * H) == local("America/New_York", 2027, 3, 20, 23, 0)


def test_friday_evening_plus_two_working_hours_is_monday_late_morning() -> None:
    office = calendar("America/New_York", OFFICE, holidays={"country": "US", "subdivision": "NY"})
    friday = local("America/New_York", 2026, 11, 27, 17, 55)  # after hours, the day after Thanksgiving
    assert office.add(friday, 2 * H) == local("America/New_York", 2026, 11, 30, 11, 0)
    # A holiday on the Monday (Martin Luther King Day, 18 January 2027) pushes it to Tuesday.
    assert office.add(local("America/New_York", 2027, 1, 15, 17, 55), 2 * H) == local(
        "America/New_York", 2027, 1, 19, 11, 0
    )
    # A dated exception closes the office too.
    closed = calendar("America/New_York", OFFICE, closed=["2026-11-30"])
    assert closed.add(friday, 2 * H) == local("America/New_York", 2026, 12, 1, 11, 0)
    # Across the spring change the instant is 11:00 EDT, an hour earlier in UTC than 11:00 EST would be.
    due = office.add(local("America/New_York", 2027, 3, 12, 17, 55), 2 * H)
    assert due == local("America/New_York", 2027, 3, 15, 11, 0) == datetime(2027, 3, 15, 15, 0, tzinfo=UTC)


def test_a_deadline_spanning_weekend_and_holiday_counts_only_working_hours() -> None:
    office = calendar("Europe/London", OFFICE, holidays={"country": "GB", "subdivision": "ENG"})
    thursday = local("Europe/London", 2026, 12, 24, 15, 0)  # Christmas Eve, then Christmas and Boxing Day
    # Thu 2 h, Fri 25th and Mon 28th (Boxing Day substitute) closed, Tue 29th: 8 h, Wed 30th: 2 h.
    assert office.add(thursday, 12 * H) == local("Europe/London", 2026, 12, 30, 11, 0)
    assert office.between(thursday, local("Europe/London", 2026, 12, 30, 11, 0)) == 12 * H


def test_working_hours_crossing_midnight() -> None:
    nights = calendar("Asia/Kolkata", NIGHTS)
    wednesday_noon = local("Asia/Kolkata", 2026, 11, 25, 12, 0)
    assert nights.add(wednesday_noon, 3 * H) == local("Asia/Kolkata", 2026, 11, 26, 1, 0)
    # Friday night's shift runs into Saturday morning; the next one is Monday night.
    friday_late = local("Asia/Kolkata", 2026, 11, 27, 23, 0)
    assert nights.add(friday_late, 8 * H) == local("Asia/Kolkata", 2026, 11, 30, 23, 0)


def test_a_case_opened_outside_working_hours_starts_counting_at_the_next_opening() -> None:
    office = calendar("Australia/Lord_Howe", OFFICE)
    saturday_night = local("Australia/Lord_Howe", 2026, 11, 28, 3, 0)
    assert office.add(saturday_night, 30 * M) == local("Australia/Lord_Howe", 2026, 11, 30, 9, 30)
    assert office.between(saturday_night, local("Australia/Lord_Howe", 2026, 11, 30, 9, 0)) == timedelta(0)


def test_a_calendar_without_working_hours_is_refused() -> None:
    with pytest.raises(ValueError, match="no working hours"):
        calendar("Europe/London", {})
    with pytest.raises(ValueError, match="overlap"):
        calendar("Europe/London", {"mon": ["09:00-17:00", "12:00-18:00"]})
    with pytest.raises(ValueError, match="overlap"):  # Sunday night runs into Monday morning
        calendar("Europe/London", {"sun": ["22:00-08:00"], "mon": ["07:00-09:00"]})
    calendar("Europe/London", {"sun": ["22:00-07:00"], "mon": ["07:00-09:00"]})  # touching is fine
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        calendar("Mars/Olympus_Mons", OFFICE)


ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]
SHAPES = {
    "office": OFFICE,
    "always": ALWAYS,
    "nights": NIGHTS,
    "split": {d: ["08:30-12:00", "13:00-17:45"] for d in WEEKDAYS[:6]},
}
CALENDARS = {
    (zone, shape): calendar(
        zone,
        hours,
        holidays={
            "country": {
                "America/New_York": "US",
                "Europe/London": "GB",
                "Australia/Lord_Howe": "AU",
                "Asia/Kolkata": "IN",
            }[zone]
        },
    )
    for zone in ZONES
    for shape, hours in SHAPES.items()
}


@settings(max_examples=1500, deadline=None)
@given(
    key=st.sampled_from(sorted(CALENDARS)),
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2031, 12, 31), timezones=st.just(UTC)),
    duration=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=400)),
)
def test_adding_then_measuring_returns_the_same_duration(key, start: datetime, duration: timedelta) -> None:
    cal = CALENDARS[key]
    due = cal.add(start, duration)
    assert due >= start
    assert cal.between(start, due) == duration
    # And the due instant is the earliest with that much work done: a moment earlier, it is short.
    if duration > timedelta(0):
        assert cal.between(start, due - timedelta(microseconds=1)) < duration


BUSINESS_POLICY = Path(__file__).parent / "policies" / "business.toml"


def test_a_pause_moves_a_business_clock_by_the_working_time_it_covered() -> None:
    from samples.cases import Case, command
    from workflows.core.commands import Acknowledge, Pause, Resume
    from workflows.core.vocabulary import PauseReason
    from workflows.policy_files import load_policy

    ny = "America/New_York"
    policy = load_policy(BUSINESS_POLICY)  # P1 on the New York office calendar
    case = Case(policy, start=local(ny, 2026, 12, 7, 10, 0))  # Monday 10:00
    case.do(command(Acknowledge), after=30 * M)
    resolve_before = case.s.clocks[DeadlineKind.RESOLVE].due_at
    case.do(command(Pause, reason=PauseReason.WAITING_ON_CUSTOMER), after=timedelta(days=4, hours=5, minutes=30))
    assert case.now == local(ny, 2026, 12, 11, 16, 0)  # Friday 16:00
    case.do(command(Resume), after=timedelta(days=2, hours=18))  # Monday 10:00
    # Paused for 66 hours of wall time, of which 2 were working hours (Friday 16-17, Monday 9-10).
    office = policy.calendars["new-york"]
    assert case.s.clocks[DeadlineKind.RESOLVE].due_at == office.add(resolve_before, 2 * H)
    assert case.refold() == case.s


def test_hours_listed_out_of_order_count_in_order() -> None:
    from datetime import UTC, datetime, timedelta

    from workflows.calendar_source import resolve_calendar
    from workflows.core.calendar import BusinessCalendar

    spec = {"time_zone": "UTC", "hours": {"mon": ["13:00-17:00", "09:00-12:00"]}}
    calendar = BusinessCalendar.model_validate(resolve_calendar("split", spec))
    monday_nine = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert calendar.is_working(monday_nine + timedelta(hours=1))
    assert not calendar.is_working(monday_nine + timedelta(hours=3, minutes=30))
    assert calendar.add(monday_nine, timedelta(hours=1)) == monday_nine + timedelta(hours=1)
    assert calendar.add(monday_nine, timedelta(hours=4)) == monday_nine + timedelta(hours=5)  # 12:00-13:00 is off
