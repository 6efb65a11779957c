"""Resolving a policy's calendar spec into a ``BusinessCalendar`` (the only calendar code that does I/O).

The spec in a policy file names a time zone, weekly hours, a holiday calendar
(country and subdivision, from the ``holidays`` library) and dated exceptions.
Resolution reads the zone's TZif bytes from the pinned ``tzdata`` package and
expands the holidays into explicit dates for ``HOLIDAY_YEARS``, so the policy
content (pinned into every case it opens) carries everything its deadlines need.
"""

from __future__ import annotations

import base64
from datetime import date
from importlib import resources
from typing import Any

import holidays as holiday_calendars
import tzdata

from workflows.core.calendar import BusinessCalendar, week_from_spec

# The years the holiday library covers for every country we have checked (some end at 2035).
HOLIDAY_YEARS = range(2024, 2036)


def resolve_calendar(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The resolved calendar for ``spec`` as policy content (a dict ``BusinessCalendar`` validates)."""
    if "tzif" in spec:
        return spec  # already resolved (a pinned policy's content)
    unknown = set(spec) - {"time_zone", "hours", "holidays", "closed"}
    if unknown:
        raise ValueError(f"calendar {name!r}: unknown field(s) {sorted(unknown)}")
    zone = str(spec.get("time_zone", ""))
    try:
        tzif = resources.files("tzdata").joinpath("zoneinfo", *zone.split("/")).read_bytes()
    except (FileNotFoundError, IsADirectoryError, ValueError):
        raise ValueError(f"calendar {name!r}: unknown IANA time zone {zone!r}") from None
    closed = {date.fromisoformat(str(d)) for d in spec.get("closed", [])}
    holiday_spec = spec.get("holidays")
    if holiday_spec:
        country = holiday_spec.get("country")
        try:
            found = holiday_calendars.country_holidays(
                country, subdiv=holiday_spec.get("subdivision"), years=HOLIDAY_YEARS
            )
        except NotImplementedError:
            raise ValueError(f"calendar {name!r}: no holiday calendar for country {country!r}") from None
        closed |= set(found)
    calendar = BusinessCalendar(
        name=name,
        time_zone=zone,
        tzdata_version=tzdata.IANA_VERSION,
        tzif=base64.b64encode(tzif).decode("ascii"),
        week=week_from_spec(spec.get("hours", {})),
        closed=tuple(sorted(closed)),
    )
    return calendar.model_dump(mode="json")
