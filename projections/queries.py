"""The read side's queries: what the API and the CLI ask of the read models and the event store.

One function per question, each answering from PostgreSQL only (never from Temporal), so the API and
the CLI give the same answer and a case keeps answering after its workflow's history is gone.
Errors: ``BadCursor`` for a cursor this module did not issue; ``CaseNotFound`` for a case the store
does not hold.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from events.store import EventStore
from workflows.core.case_view import CaseView, case_view
from workflows.core.events import RecordedEvent, stream_id_for
from workflows.core.evolve import fold
from workflows.core.state import ACTIVE, EscalationState

ACTIVE_STATUSES = sorted(status.value for status in ACTIVE)
"""The statuses of a case still being worked (open, in progress, resolution proposed), for SQL."""


class BadCursor(ValueError):
    """The cursor was not one ``list_cases`` returned."""


class CaseNotFound(LookupError):
    """The event store holds no case with this id."""


# ---------------------------------------------------------------------------- one case, from the store


async def case_events(store: EventStore, case_id: str) -> list[RecordedEvent]:
    events = await store.read_stream(stream_id_for(case_id))
    if not events:
        raise CaseNotFound(case_id)
    return events


async def case_state(store: EventStore, case_id: str) -> EscalationState:
    """The case folded from its stored events (the record), whatever became of its workflow."""
    state = fold(await case_events(store, case_id))
    assert state is not None  # a stream with events always folds to a state
    return state


async def read_case(store: EventStore, case_id: str) -> CaseView:
    return case_view(await case_state(store, case_id))


async def verify_case(store: EventStore, case_id: str) -> dict[str, Any]:
    """The case's hash chain recomputed from the stored bytes: ``ok``, or the first break and why."""
    stream = stream_id_for(case_id)
    count = await store.stream_length(stream)
    if not count:
        raise CaseNotFound(case_id)
    broken = await store.verify_stream(stream)
    return {
        "case_id": case_id,
        "events": count,
        "ok": broken is None,
        "broken": None if broken is None else {"version": broken.version, "reason": broken.reason},
    }


# ---------------------------------------------------------------------------- the case list


@dataclass(frozen=True)
class CaseFilters:
    status: str | None = None
    priority: str | None = None
    level: int | None = None
    customer_id: str | None = None
    owner: str | None = None
    team: str | None = None
    unassigned: bool | None = None  # True: cases no one owns (a team's queue); False: owned ones
    breached: bool | None = None
    active: bool | None = None  # True: only cases still being worked; False: only finished ones
    awaiting_follow_up: bool | None = None  # True: resolved or closed cases whose follow-up is not recorded


@dataclass(frozen=True)
class CasePage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _encode_cursor(row: asyncpg.Record) -> str:
    token = {"d": row["next_deadline_at"].isoformat() if row["next_deadline_at"] else None, "id": row["case_id"]}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return (datetime.fromisoformat(after["d"]) if after["d"] else None), str(after["id"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BadCursor("cursor is not one this API returned") from None


async def list_cases(
    conn: asyncpg.Connection, filters: CaseFilters, *, limit: int = 50, cursor: str | None = None
) -> CasePage:
    """Cases from the case-list read model, soonest next deadline first (none last), a page at a time."""
    clauses: list[str] = []
    args: list[Any] = []
    for column in ("status", "priority", "level", "customer_id", "owner", "team", "breached"):
        value = getattr(filters, column)
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if filters.active is not None:
        args.append(ACTIVE_STATUSES)
        clauses.append(f"{'' if filters.active else 'NOT '}(status = ANY(${len(args)}::text[]))")
    if filters.unassigned is not None:
        clauses.append(f"owner IS {'' if filters.unassigned else 'NOT '}NULL")
    if filters.awaiting_follow_up is not None:
        clauses.append(f"follow_up_due_at IS {'NOT ' if filters.awaiting_follow_up else ''}NULL")
    if cursor:
        after_deadline, after_id = _decode_cursor(cursor)
        args += [after_deadline, after_id]
        d, i = f"${len(args) - 1}", f"${len(args)}"
        clauses.append(
            f"(coalesce(next_deadline_at, 'infinity') > coalesce({d}::timestamptz, 'infinity') OR "
            f"(coalesce(next_deadline_at, 'infinity') = coalesce({d}::timestamptz, 'infinity') AND case_id > {i}))"
        )
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT * FROM case_list {where} ORDER BY coalesce(next_deadline_at, 'infinity'), case_id LIMIT ${len(args)}",
        *args,
    )
    items = [dict(r) for r in rows[:limit]]
    return CasePage(items=items, next_cursor=_encode_cursor(rows[limit - 1]) if len(rows) > limit else None)


async def active_case_ids(conn: asyncpg.Connection, *, priority: str | None, customer_id: str | None) -> list[str]:
    """Every case still being worked, optionally of one priority or customer, by id."""
    rows = await conn.fetch(
        "SELECT case_id FROM case_list WHERE status = ANY($1::text[]) "
        "AND ($2::text IS NULL OR priority = $2) AND ($3::text IS NULL OR customer_id = $3) ORDER BY case_id",
        ACTIVE_STATUSES,
        priority,
        customer_id,
    )
    return [r["case_id"] for r in rows]


# ---------------------------------------------------------------------------- systemic issues


async def systemic_issues(conn: asyncpg.Connection, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    """Recurring root causes with the cases behind them, and accounts at risk, as of ``now`` (default: the
    database's clock).

    Each is counted within its window ending at ``now``, with the thresholds of the policy pinned on its
    latest case; withdrawn cases count nowhere. An issue or an account whose cases have left the window
    is no longer listed (the projection's tables keep when each was first detected).
    """
    at = now if now is not None else await conn.fetchval("SELECT now()")
    issues = await conn.fetch(_LIVE_SYSTEMIC_ISSUES, at)
    risky = await conn.fetch(_LIVE_ACCOUNTS_AT_RISK, at)
    return {"systemic_issues": [dict(r) for r in issues], "accounts_at_risk": [dict(r) for r in risky]}


_LIVE_SYSTEMIC_ISSUES = """
WITH occurrences AS (
    SELECT o.root_cause, o.case_id, o.customer_id, o.resolved_at, c.min_cases, c.min_customers, c.window_seconds
    FROM root_cause_occurrences o JOIN systemic_cases c USING (case_id)
    WHERE NOT c.withdrawn AND o.resolved_at <= $1
), rules AS (
    SELECT DISTINCT ON (root_cause) root_cause, min_cases, min_customers, window_seconds
    FROM occurrences ORDER BY root_cause, resolved_at DESC
)
SELECT r.root_cause, coalesce(s.first_detected_at, min(o.resolved_at)) AS first_detected_at,
       max(o.resolved_at) AS last_seen_at, count(DISTINCT o.case_id)::int AS case_count,
       count(DISTINCT o.customer_id)::int AS customer_count,
       array_agg(DISTINCT o.case_id ORDER BY o.case_id) AS case_ids
FROM rules r JOIN occurrences o USING (root_cause) LEFT JOIN systemic_issues s USING (root_cause)
WHERE o.resolved_at > $1 - make_interval(secs => r.window_seconds)
GROUP BY r.root_cause, r.min_cases, r.min_customers, s.first_detected_at
HAVING count(DISTINCT o.case_id) >= r.min_cases OR count(DISTINCT o.customer_id) >= r.min_customers
ORDER BY case_count DESC, root_cause
"""

_LIVE_ACCOUNTS_AT_RISK = """
WITH cases AS (
    SELECT * FROM systemic_cases WHERE NOT withdrawn AND opened_at <= $1
), rules AS (
    SELECT DISTINCT ON (customer_id) customer_id, min_cases, window_seconds
    FROM cases ORDER BY customer_id, opened_at DESC
)
SELECT r.customer_id, coalesce(a.flagged_at, max(c.opened_at)) AS flagged_at,
       count(*)::int AS cases_in_window, array_agg(c.case_id ORDER BY c.opened_at, c.case_id) AS case_ids
FROM rules r JOIN cases c USING (customer_id) LEFT JOIN accounts_at_risk a USING (customer_id)
WHERE c.opened_at > $1 - make_interval(secs => r.window_seconds)
GROUP BY r.customer_id, r.min_cases, a.flagged_at
HAVING count(*) >= r.min_cases
ORDER BY cases_in_window DESC, customer_id
"""
