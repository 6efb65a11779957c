"""Business-hours calendars: deadline arithmetic in working time, pure and DST-safe.

A ``BusinessCalendar`` is fully resolved: its time zone travels as the TZif
bytes of the pinned ``tzdata`` release and its holidays as explicit dates, so
the same calendar gives the same instants on every machine and on every replay,
whatever the host's time-zone database or holiday library says later
(``workflows/calendar_source.py`` builds one from a policy's spec; that part
does the I/O).

Working time is a set of intervals in local wall-clock time per weekday. An
interval whose end is not after its start crosses midnight and ends on the
next day. A closed date (holiday or dated exception) removes the intervals that
*start* on it. Local times map to instants through the zone's rules: a working
interval that spans a DST change is as long as the real time that passes
(8 wall-clock hours across the spring change are 7 real hours); a local time
that does not exist (in the spring gap) is read with the offset before the change.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# Adding a duration that needs more than this much calendar time is refused
# (a calendar closed for years would otherwise be searched for ever).
_SEARCH_LIMIT = timedelta(days=3 * 366)
_WEEK_SECONDS = 7 * 24 * 3600


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _parse_interval(value: object) -> object:
    """``"09:00-17:00"`` -> ``{"start": "09:00", "end": "17:00"}``; anything else passes to pydantic."""
    if isinstance(value, str) and "-" in value:
        start, end = (part.strip() for part in value.split("-", 1))
        return {"start": start, "end": end}
    return value


class _Interval(_Frozen):
    start: time
    end: time  # not after start: the interval ends on the next day

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


WorkingInterval = Annotated[_Interval, BeforeValidator(_parse_interval)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessCalendar(_Frozen):
    """A resolved working calendar (see module doc). Hashable, so results can be cached per calendar."""

    name: str
    time_zone: str
    tzdata_version: str
    tzif: str  # base64 of the zone's TZif file from tzdata ``tzdata_version``
    # Monday first; each day's intervals in local time.
    week: tuple[tuple[WorkingInterval, ...], ...] = Field(min_length=7, max_length=7)
    closed: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _has_working_time(self) -> BusinessCalendar:
        if not any(self.week):
            raise ValueError(f"calendar {self.name!r} has no working hours in the week")
        # Overlapping intervals would count the same hour twice; an overnight interval
        # runs into the next day (Sunday's into Monday), so compare on the week's clock.
        spans = []
        for weekday, intervals in enumerate(self.week):
            for interval in intervals:
                begin = weekday * 86400 + _seconds(interval.start)
                length = (_seconds(interval.end) - _seconds(interval.start)) % 86400 or 86400
                spans += [(begin, begin + length), (begin + _WEEK_SECONDS, begin + length + _WEEK_SECONDS)]
        spans.sort()
        for (_, end), (begin, _) in zip(spans, spans[1:], strict=False):
            if begin < end:
                raise ValueError(f"calendar {self.name!r}: working intervals overlap")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.time_zone, self.tzif)

    def intervals_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC, in order) that end after ``start``, the first clipped to begin at it."""
        zone = self.zone
        closed = frozenset(self.closed)
        day = start.astimezone(zone).date() - timedelta(days=1)  # yesterday's overnight shift may still run
        while True:
            if day not in closed:
                # In order of their start, however the spec listed them.
                for interval in sorted(self.week[day.weekday()], key=lambda i: i.start):
                    begin = datetime.combine(day, interval.start, zone).astimezone(UTC)
                    end_day = day + timedelta(days=1) if interval.crosses_midnight else day
                    end = datetime.combine(end_day, interval.end, zone).astimezone(UTC)
                    if end > start and end > begin:
                        yield max(begin, start), end
            day += timedelta(days=1)

    def is_working(self, at: datetime) -> bool:
        """Whether ``at`` falls within working time (a person on this calendar is at work)."""
        begin, _ = next(self.intervals_from(at.astimezone(UTC)))
        return begin <= at

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of working time has passed since ``start``."""
        return _add(self, start.astimezone(UTC), duration)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in ``[start, end)`` (zero if ``end`` is not after ``start``)."""
        return _between(self, start.astimezone(UTC), end.astimezone(UTC))


def _seconds(moment: time) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


@lru_cache(maxsize=64)
def _zone(key: str, tzif: str) -> ZoneInfo:
    return ZoneInfo.from_file(io.BytesIO(base64.b64decode(tzif)), key=key)


@lru_cache(maxsize=65536)
def _add(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    if duration <= timedelta(0):
        return start
    remaining = duration
    for begin, end in calendar.intervals_from(start):
        if begin - start > _SEARCH_LIMIT:
            break
        if end - begin >= remaining:
            return begin + remaining
        remaining -= end - begin
    raise ValueError(f"calendar {calendar.name!r}: {duration} of working time not found within three years")


@lru_cache(maxsize=65536)
def _between(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    total = timedelta(0)
    if end <= start:
        return total
    for begin, finish in calendar.intervals_from(start):
        if begin >= end:
            break
        total += min(finish, end) - begin
    return total


def week_from_spec(hours: dict[str, list[str]]) -> tuple[tuple[_Interval, ...], ...]:
    """``{"mon": ["09:00-12:00", "13:00-17:00"], ...}`` -> the ``week`` tuple (days not named are closed)."""
    unknown = set(hours) - set(WEEKDAYS)
    if unknown:
        raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
    return tuple(tuple(_Interval.model_validate(_parse_interval(i)) for i in hours.get(day, [])) for day in WEEKDAYS)
