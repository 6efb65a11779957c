"""The deadline watchdog: the promise checked from outside the engine that keeps it.

Every open case's earliest running deadline is in the case list (``next_deadline_at``); a deadline that is
enforced moves it (the breach re-arms the clock or stops it), and so does a command that stops the clock.
So a case whose ``next_deadline_at`` is more than ``margin`` in the past, while its case-list row is up to
date with its stream, has a deadline that fell due and whose terminal event was never stored: a lost timer,
a workflow that is gone, a worker that is not running. (The earliest deadline is enough: if any of a case's
deadlines is overdue, its earliest is.)

The watchdog reads only; it never writes case events. Reported by ``escalations watchdog``, the
``escalations_overdue_deadlines`` gauge (alert ``DeadlineOverdue``) and a line in ``/readyz``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from workflows.core.durations import parse_duration

DEFAULT_MARGIN = timedelta(seconds=60)
MARGIN_VARIABLE = "ESCALATIONS_WATCHDOG_MARGIN"


@dataclass(frozen=True)
class OverdueDeadline:
    case_id: str
    kind: str
    level: int
    due_at: datetime
    overdue: timedelta

    def describe(self) -> str:
        return (
            f"case {self.case_id}: {self.kind} deadline due {self.due_at:%Y-%m-%d %H:%M:%S} UTC at level "
            f"{self.level}, {int(self.overdue.total_seconds())} s overdue with no breach stored"
        )


def parse_margin(raw: str, source: str) -> timedelta:
    """A margin given as a duration such as ``60s`` or ``2m``; ``ValueError`` naming ``source`` otherwise."""
    margin = parse_duration(raw)
    if not isinstance(margin, timedelta) or margin <= timedelta(0):
        raise ValueError(f"{source} must be a positive duration such as 60s, not {raw!r}")
    return margin


def margin_from_env() -> timedelta:
    """``ESCALATIONS_WATCHDOG_MARGIN``, else 60 s."""
    raw = os.environ.get(MARGIN_VARIABLE)
    return parse_margin(raw, MARGIN_VARIABLE) if raw else DEFAULT_MARGIN


_OVERDUE = (
    "FROM case_list c WHERE c.next_deadline_at < $1 AND c.status NOT IN ('closed', 'withdrawn') "
    # Only rows the projector has brought up to the stream's head: a lagging read model is not a lost timer.
    "AND c.version = (SELECT max(e.version) FROM events e WHERE e.stream_id = c.stream_id)"
)


async def count_overdue(db: asyncpg.Connection | asyncpg.Pool, margin: timedelta = DEFAULT_MARGIN) -> int:
    """How many deadlines ``overdue_deadlines`` would list (for the gauge and /readyz)."""
    return int(await db.fetchval(f"SELECT count(*) {_OVERDUE}", datetime.now(UTC) - margin))


async def overdue_deadlines(
    db: asyncpg.Connection | asyncpg.Pool, margin: timedelta = DEFAULT_MARGIN, now: datetime | None = None
) -> list[OverdueDeadline]:
    """Deadlines more than ``margin`` past due with no terminal event stored, earliest first."""
    now = now or datetime.now(UTC)
    rows = await db.fetch(
        f"SELECT c.case_id, c.next_deadline_kind, c.level, c.next_deadline_at {_OVERDUE} "
        "ORDER BY c.next_deadline_at, c.case_id",
        now - margin,
    )
    return [
        OverdueDeadline(
            r["case_id"], r["next_deadline_kind"], r["level"], r["next_deadline_at"], now - r["next_deadline_at"]
        )
        for r in rows
    ]
