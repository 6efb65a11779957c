"""Operations metrics, computed in SQL over the case-list read model.

Definitions (the test computes each independently from raw events):
* time to acknowledge = first acknowledgement - opening; time to resolve =
  first resolution - opening; percentiles are ``percentile_cont`` (linear
  interpolation), grouped by priority, category, customer tier and month opened.
* breach rate by kind (and by level) = cases with at least one such breach / cases.
* escalations by level reached = cases per highest level reached.
* declined-request rate = declined requests / escalation requests.
* reopen rate = cases reopened at least once / cases.
* hand-offs per case = mean of hand-offs (reassignments) per case.
* paused time by reason = seconds, summed over cases.
* compensation paid = sum over resolutions.
* closed within 30 days = closed cases whose (last) close came within 30 days of
  opening / closed cases.
* satisfaction = mean follow-up score, and the count of each score.
* value at risk = the annual value of the accounts with a case still being worked (each account once, at
  the value its latest case recorded), and of those among them with a case that breached a deadline.
"""

from __future__ import annotations

from typing import Any

import asyncpg

PERCENTILES = (0.5, 0.9, 0.99)
GROUPS = {
    "priority": "priority",
    "category": "category",
    "customer_tier": "customer_tier",
    "month": "to_char(opened_at AT TIME ZONE 'UTC', 'YYYY-MM')",
}
DURATIONS = {
    "time_to_acknowledge": "first_acknowledged_at",
    "time_to_resolve": "first_resolved_at",
}


async def compute_metrics(
    conn: asyncpg.Connection, table: str = "case_list", breaches: str = "case_breaches"
) -> dict[str, Any]:
    # Withdrawn cases (duplicates, invalid, withdrawn by the customer) count in no rate: only in ``withdrawn``.
    withdrawn = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE status = 'withdrawn'")
    live = f"(SELECT * FROM {table} WHERE status <> 'withdrawn') AS live"
    live_breaches = f"(SELECT b.* FROM {breaches} b JOIN {table} c USING (case_id) WHERE c.status <> 'withdrawn') AS b"
    metrics: dict[str, Any] = {"cases": await conn.fetchval(f"SELECT count(*) FROM {live}"), "withdrawn": withdrawn}
    for name, column in DURATIONS.items():
        metrics[name] = {}
        for group, expr in GROUPS.items():
            rows = await conn.fetch(
                f"SELECT {expr} AS key, count(*) AS n, "
                f"percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP "
                f"(ORDER BY extract(epoch FROM {column} - opened_at)) AS p "
                f"FROM {live} WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY 1"
            )
            metrics[name][f"by_{group}"] = {
                r["key"]: {"count": r["n"], "p50": r["p"][0], "p90": r["p"][1], "p99": r["p"][2]} for r in rows
            }
    total = metrics["cases"] or 1
    by_kind = await conn.fetch(
        f"SELECT kind, count(*) AS breaches, count(DISTINCT case_id) AS cases FROM {live_breaches} GROUP BY kind ORDER BY kind"
    )
    by_level = await conn.fetch(
        f"SELECT level, count(*) AS breaches, count(DISTINCT case_id) AS cases FROM {live_breaches} GROUP BY level ORDER BY level"
    )
    metrics["breach_rate"] = {
        "by_kind": {
            r["kind"]: {"breaches": r["breaches"], "cases": r["cases"], "rate": r["cases"] / total} for r in by_kind
        },
        "by_level": {
            r["level"]: {"breaches": r["breaches"], "cases": r["cases"], "rate": r["cases"] / total} for r in by_level
        },
    }
    metrics["escalations_by_level_reached"] = {
        r["max_level_reached"]: r["n"]
        for r in await conn.fetch(f"SELECT max_level_reached, count(*) AS n FROM {live} GROUP BY 1 ORDER BY 1")
    }
    agg = await conn.fetchrow(
        f"""SELECT coalesce(sum(escalation_requests), 0) AS requests,
                   coalesce(sum(declined_requests), 0) AS declined,
                   count(*) FILTER (WHERE reopen_count > 0) AS reopened,
                   coalesce(avg(handoffs), 0) AS handoffs,
                   coalesce(sum(paused_customer_seconds), 0) AS paused_customer,
                   coalesce(sum(paused_third_party_seconds), 0) AS paused_third_party,
                   coalesce(sum(compensation_paid), 0) AS compensation,
                   count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed,
                   count(*) FILTER (WHERE closed_at IS NOT NULL AND closed_at - opened_at <= interval '30 days') AS closed_30,
                   avg(satisfaction) AS satisfaction
              FROM {live}"""
    )
    metrics["declined_request_rate"] = agg["declined"] / agg["requests"] if agg["requests"] else 0.0
    metrics["reopen_rate"] = agg["reopened"] / total
    metrics["handoffs_per_case"] = float(agg["handoffs"])
    metrics["paused_seconds_by_reason"] = {
        "waiting_on_customer": agg["paused_customer"],
        "waiting_on_third_party": agg["paused_third_party"],
    }
    metrics["compensation_paid"] = str(agg["compensation"])
    metrics["closed_within_30_days"] = agg["closed_30"] / agg["closed"] if agg["closed"] else None
    metrics["satisfaction"] = {
        "mean": float(agg["satisfaction"]) if agg["satisfaction"] is not None else None,
        "counts": {
            r["satisfaction"]: r["n"]
            for r in await conn.fetch(
                f"SELECT satisfaction, count(*) AS n FROM {live} WHERE satisfaction IS NOT NULL GROUP BY 1 ORDER BY 1"
            )
        },
    }
    value = await conn.fetchrow(
        f"""SELECT count(*) AS accounts, coalesce(sum(value), 0) AS value,
                   count(*) FILTER (WHERE risky) AS risky_accounts,
                   coalesce(sum(value) FILTER (WHERE risky), 0) AS risky_value
              FROM (SELECT customer_id, (array_agg(annual_value ORDER BY opened_at DESC))[1] AS value,
                           bool_or(status IN ('open', 'in_progress', 'resolution_proposed')) AS open,
                           bool_or(breached AND status IN ('open', 'in_progress', 'resolution_proposed')) AS risky
                      FROM {live} GROUP BY customer_id) AS accounts
             WHERE open"""
    )
    metrics["value_at_risk"] = {
        "accounts_with_open_cases": value["accounts"],
        "annual_value_of_open_cases": str(value["value"]),
        "accounts_with_breached_open_cases": value["risky_accounts"],
        "annual_value_with_breached_open_cases": str(value["risky_value"]),
    }
    return metrics


TREND_BUCKETS = {"day": "day", "week": "week", "month": "month"}


async def compute_trend(conn: asyncpg.Connection, bucket: str = "day", table: str = "case_list") -> dict[str, Any]:
    """Median time to acknowledge and to resolve per priority, per ``bucket`` of opening (UTC).

    Same definitions as ``compute_metrics``; the console draws these as lines.
    """
    unit = TREND_BUCKETS[bucket]
    series: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in DURATIONS}
    for name, column in DURATIONS.items():
        rows = await conn.fetch(
            f"SELECT date_trunc('{unit}', opened_at AT TIME ZONE 'UTC') AS bucket, priority, count(*) AS n, "
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM {column} - opened_at)) AS p50 "
            f"FROM {table} WHERE {column} IS NOT NULL AND status <> 'withdrawn' GROUP BY 1, 2 ORDER BY 1, 2"
        )
        for r in rows:
            series[name].setdefault(r["priority"], []).append(
                {"bucket": r["bucket"].date().isoformat(), "count": r["n"], "p50_seconds": r["p50"]}
            )
    return {"bucket": bucket, **series}
