"""The executive digest: what the C-levels need to know, read from the read models.

Open P1 and P2 cases with their next deadlines, the breaches of the period, the accounts at risk with the
annual value behind them, and the systemic issues first detected in the period. Composed on demand
(``GET /v1/digest/executive``) and by a Temporal Schedule (``workflows/digest_workflow.py``), which also
sends it to every executive in the directory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from projections.queries import ACTIVE_STATUSES, systemic_issues


async def executive_digest(conn: asyncpg.Connection, since: datetime, now: datetime) -> dict[str, Any]:
    open_cases = await conn.fetch(
        "SELECT case_id, title, priority, level, status, owner, team, customer_id, customer_name, "
        "next_deadline_at, next_deadline_kind, breached FROM case_list "
        "WHERE status = ANY($1::text[]) AND priority IN ('P1', 'P2') "
        "ORDER BY priority, coalesce(next_deadline_at, 'infinity'), case_id",
        ACTIVE_STATUSES,
    )
    breaches = await conn.fetch(
        "SELECT b.case_id, c.title, c.priority, b.kind, b.level, b.due_at, b.detected_at FROM case_breaches b "
        "JOIN case_list c USING (case_id) WHERE b.detected_at >= $1 AND b.detected_at <= $2 "
        "AND c.status <> 'withdrawn' ORDER BY b.detected_at, b.case_id",
        since,
        now,
    )
    systemic = await systemic_issues(conn, now)
    values = {
        r["customer_id"]: r["value"]
        for r in await conn.fetch(
            "SELECT customer_id, (array_agg(annual_value ORDER BY opened_at DESC))[1] AS value FROM case_list "
            "WHERE customer_id = ANY($1::text[]) GROUP BY customer_id",
            [a["customer_id"] for a in systemic["accounts_at_risk"]],
        )
    }
    at_risk = [a | {"annual_value": str(values.get(a["customer_id"], 0))} for a in systemic["accounts_at_risk"]]
    return {
        "period": {"from": since, "to": now},
        "open_top_priority_cases": [dict(r) for r in open_cases],
        "breaches": [dict(r) for r in breaches],
        "accounts_at_risk": at_risk,
        "annual_value_at_risk": str(sum((values.get(a["customer_id"], 0) for a in at_risk), 0)),
        "new_systemic_issues": [i for i in systemic["systemic_issues"] if i["first_detected_at"] >= since],
    }


def digest_text(digest: dict[str, Any]) -> str:
    """The digest in words, for email and the inbox."""
    lines = [
        f"Escalations digest, {digest['period']['from']:%Y-%m-%d %H:%M} to {digest['period']['to']:%Y-%m-%d %H:%M} UTC"
    ]
    lines.append(f"\nOpen P1/P2 cases: {len(digest['open_top_priority_cases'])}")
    for case in digest["open_top_priority_cases"]:
        due = (
            f"{case['next_deadline_kind']} due {case['next_deadline_at']:%Y-%m-%d %H:%M}"
            if case["next_deadline_at"]
            else "no deadline running"
        )
        lines.append(
            f"- {case['priority']} {case['case_id']} {case['title']} ({case['customer_name']}): level {case['level']}, {due}"
        )
    lines.append(f"\nBreaches in the period: {len(digest['breaches'])}")
    for b in digest["breaches"]:
        lines.append(
            f"- {b['case_id']} {b['title']}: {b['kind']} missed at level {b['level']} (due {b['due_at']:%Y-%m-%d %H:%M})"
        )
    lines.append(
        f"\nAccounts at risk: {len(digest['accounts_at_risk'])}, annual value {digest['annual_value_at_risk']}"
    )
    for a in digest["accounts_at_risk"]:
        lines.append(
            f"- {a['customer_id']}: {a['cases_in_window']} cases in the window, annual value {a['annual_value']}"
        )
    lines.append(f"\nNew systemic issues: {len(digest['new_systemic_issues'])}")
    for i in digest["new_systemic_issues"]:
        lines.append(f"- {i['root_cause']}: {i['case_count']} cases at {i['customer_count']} customers")
    return "\n".join(lines)
