"""Systemic issues: root causes that recur, and accounts that keep escalating.

Thresholds come from the ``[systemic]`` section of the policy pinned on each
case: a root cause is systemic once, within the window ending at a resolution,
it was behind at least ``min_cases`` cases or seen at ``min_customers``
customers. An account is at risk once it opened ``min_cases`` escalations
within the window. The point of measuring is prevention: each issue lists
the cases behind it.

The tables keep what was detected and when; what is systemic *now* is read by
``projections.queries.systemic_issues``, which counts within the window ending
at the moment of reading, so an issue or an account leaves the list once its
cases leave the window. A withdrawn case counts nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from projections.runner import Projection
from workflows.core.events import Opened, RecordedEvent, Resolved, Withdrawn, case_id_of
from workflows.core.policy import SystemicRules


class SystemicProjection(Projection):
    name = "systemic"
    tables = ("systemic_cases", "root_cause_occurrences", "systemic_issues", "accounts_at_risk")

    async def apply(self, conn: asyncpg.Connection, events: Sequence[RecordedEvent]) -> None:
        # Event by event: each detection depends on the rows written before it.
        for event in events:
            if isinstance(event.data, Opened):
                await self._opened(conn, event, event.data)
            elif isinstance(event.data, Resolved):
                await self._resolved(conn, event, event.data)
            elif isinstance(event.data, Withdrawn):
                await conn.execute(
                    f"UPDATE {self.t['systemic_cases']} SET withdrawn = true WHERE case_id = $1",
                    case_id_of(event.stream_id),
                )

    async def _opened(self, conn: asyncpg.Connection, event: RecordedEvent, data: Opened) -> None:
        rules = SystemicRules.model_validate(data.policy.get("systemic", {}))
        t = self.t
        await conn.execute(
            f"INSERT INTO {t['systemic_cases']} (case_id, customer_id, opened_at, min_cases, min_customers, window_seconds) "
            f"VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id) DO NOTHING",
            data.case_id,
            data.customer.id,
            event.occurred_at,
            rules.min_cases,
            rules.min_customers,
            rules.window.total_seconds(),
        )
        recent = await conn.fetch(
            f"SELECT case_id FROM {t['systemic_cases']} WHERE customer_id = $1 AND opened_at > $2 AND opened_at <= $3 "
            f"AND NOT withdrawn "
            f"ORDER BY opened_at, case_id",
            data.customer.id,
            event.occurred_at - rules.window,
            event.occurred_at,
        )
        if len(recent) >= rules.min_cases:
            await conn.execute(
                f"INSERT INTO {t['accounts_at_risk']} (customer_id, flagged_at, cases_in_window, case_ids) "
                f"VALUES ($1, $2, $3, $4) ON CONFLICT (customer_id) DO UPDATE SET "
                f"cases_in_window = EXCLUDED.cases_in_window, case_ids = EXCLUDED.case_ids",
                data.customer.id,
                event.occurred_at,
                len(recent),
                [r["case_id"] for r in recent],
            )

    async def _resolved(self, conn: asyncpg.Connection, event: RecordedEvent, data: Resolved) -> None:
        t = self.t
        case_id = case_id_of(event.stream_id)
        case = await conn.fetchrow(
            f"SELECT customer_id, min_cases, min_customers, window_seconds FROM {t['systemic_cases']} WHERE case_id = $1",
            case_id,
        )
        if case is None:  # cannot happen: the opening event comes first in position order
            raise RuntimeError(f"systemic projection: {case_id} resolved before it was opened")
        at = event.occurred_at
        await conn.execute(
            f"INSERT INTO {t['root_cause_occurrences']} (event_id, case_id, customer_id, root_cause, resolved_at) "
            f"VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
            event.event_id,
            case_id,
            case["customer_id"],
            data.root_cause.value,
            at,
        )
        window = timedelta(seconds=case["window_seconds"])
        seen = await conn.fetchrow(
            f"SELECT count(DISTINCT o.case_id) AS cases, count(DISTINCT o.customer_id) AS customers, "
            f"array_agg(DISTINCT o.case_id ORDER BY o.case_id) AS case_ids FROM {t['root_cause_occurrences']} o "
            f"JOIN {t['systemic_cases']} c USING (case_id) "
            f"WHERE root_cause = $1 AND resolved_at > $2 AND resolved_at <= $3 AND NOT c.withdrawn",
            data.root_cause.value,
            at - window,
            at,
        )
        if seen["cases"] >= case["min_cases"] or seen["customers"] >= case["min_customers"]:
            await conn.execute(
                f"INSERT INTO {t['systemic_issues']} AS s (root_cause, first_detected_at, last_seen_at, case_count, "
                f"customer_count, case_ids) VALUES ($1, $2, $2, $3, $4, $5) ON CONFLICT (root_cause) DO UPDATE SET "
                f"last_seen_at = EXCLUDED.last_seen_at, "
                f"case_ids = (SELECT array_agg(DISTINCT c ORDER BY c) FROM unnest(s.case_ids || EXCLUDED.case_ids) c), "
                f"case_count = (SELECT count(DISTINCT c) FROM unnest(s.case_ids || EXCLUDED.case_ids) c), "
                f"customer_count = greatest(s.customer_count, EXCLUDED.customer_count)",
                data.root_cause.value,
                at,
                seen["cases"],
                seen["customers"],
                list(seen["case_ids"]),
            )
