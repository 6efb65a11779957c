"""Metrics over a generated history of 10,000 cases equal an independent computation from the raw events.

The independent side below reads only event payloads (no fold, no evolve, no SQL).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest

from events.store import EventStore
from projections.case_list import CaseListProjection
from projections.metrics import compute_metrics
from projections.runner import Projector
from samples.histories import generate_case
from workflows.core.events import NewEvent

CASES = 10_000
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def histories() -> list[list[NewEvent]]:
    rng = random.Random(2026)
    return [generate_case(rng, i) for i in range(CASES)]


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (what percentile_cont computes)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def independent_metrics(histories: list[list[NewEvent]]) -> dict:
    durations: dict[str, dict[str, dict[str, list[float]]]] = {
        "time_to_acknowledge": defaultdict(lambda: defaultdict(list)),
        "time_to_resolve": defaultdict(lambda: defaultdict(list)),
    }
    breaches_by_kind: dict[str, list] = defaultdict(list)
    breaches_by_level: dict[int, list] = defaultdict(list)
    level_reached: dict[int, int] = defaultdict(int)
    requests = declined = reopened = handoffs = closed = closed_30 = 0
    paused = {"waiting_on_customer": 0.0, "waiting_on_third_party": 0.0}
    compensation = Decimal(0)
    scores: list[int] = []
    withdrawn = 0
    # customer -> (opened_at of their latest case, its annual value); and who has open, breached open cases
    latest_value: dict[str, tuple] = {}
    open_customers: set[str] = set()
    breached_open_customers: set[str] = set()
    for events in histories:
        if any(e.data.type == "escalation.withdrawn" for e in events):
            withdrawn += 1  # a withdrawn case (a duplicate, invalid) counts in no rate
            continue
        opened = events[0]
        case_id = opened.data.case_id
        priority = opened.data.priority.value
        groups = {
            "category": opened.data.category.value,
            "customer_tier": opened.data.customer.tier.value,
            "month": opened.occurred_at.strftime("%Y-%m"),
        }
        first_ack = first_resolved = closed_at = None
        max_level, pause_reason, satisfaction, was_reopened = 1, None, None, False
        finished = breached = False
        customer = opened.data.customer
        if customer.id not in latest_value or latest_value[customer.id][0] < opened.occurred_at:
            latest_value[customer.id] = (opened.occurred_at, customer.annual_value)
        for e in events[1:]:
            t, d = e.data.type.removeprefix("escalation."), e.data
            if t == "priority_changed":
                priority = d.to_priority.value
            elif t == "acknowledged" and first_ack is None:
                first_ack = e.occurred_at
            elif t == "resolved":
                finished = True
                first_resolved = first_resolved or e.occurred_at
                compensation += d.compensation_paid
            elif t == "deadline_breached":
                breached = True
                breaches_by_kind[d.kind.value].append(case_id)
                breaches_by_level[d.level].append(case_id)
            elif t == "escalated":
                max_level = max(max_level, d.to_level)
            elif t == "escalation_requested":
                requests += 1
            elif t == "escalation_declined":
                declined += 1
            elif t == "owner_assigned":
                handoffs += d.is_handoff
            elif t == "paused":
                pause_reason = d.reason.value
            elif t == "resumed":
                paused[pause_reason] += d.paused_seconds
            elif t == "closed":
                finished, closed_at = True, e.occurred_at
            elif t == "reopened":
                was_reopened, closed_at, satisfaction, finished = True, None, None, False
            elif t == "follow_up_completed":
                satisfaction = d.satisfaction
        groups["priority"] = priority
        if not finished:
            open_customers.add(customer.id)
            if breached:
                breached_open_customers.add(customer.id)
        for name, end in (("time_to_acknowledge", first_ack), ("time_to_resolve", first_resolved)):
            if end is not None:
                for group, key in groups.items():
                    durations[name][group][key].append((end - opened.occurred_at).total_seconds())
        level_reached[max_level] += 1
        reopened += was_reopened
        if closed_at is not None:
            closed += 1
            closed_30 += closed_at - opened.occurred_at <= timedelta(days=30)
        if satisfaction is not None:
            scores.append(satisfaction)
    total = len(histories) - withdrawn
    result: dict = {"cases": total, "withdrawn": withdrawn}
    for name, by_group in durations.items():
        result[name] = {
            f"by_{group}": {
                key: {"count": len(v), "p50": percentile(v, 0.5), "p90": percentile(v, 0.9), "p99": percentile(v, 0.99)}
                for key, v in sorted(keys.items())
            }
            for group, keys in by_group.items()
        }
    result["breach_rate"] = {
        "by_kind": {
            k: {"breaches": len(v), "cases": len(set(v)), "rate": len(set(v)) / total}
            for k, v in breaches_by_kind.items()
        },
        "by_level": {
            k: {"breaches": len(v), "cases": len(set(v)), "rate": len(set(v)) / total}
            for k, v in breaches_by_level.items()
        },
    }
    result["escalations_by_level_reached"] = dict(level_reached)
    result["declined_request_rate"] = declined / requests
    result["reopen_rate"] = reopened / total
    result["handoffs_per_case"] = handoffs / total
    result["paused_seconds_by_reason"] = paused
    result["compensation_paid"] = compensation
    result["closed_within_30_days"] = closed_30 / closed
    result["satisfaction"] = {
        "mean": sum(scores) / len(scores),
        "counts": {s: scores.count(s) for s in sorted(set(scores))},
    }
    assert open_customers and breached_open_customers  # the history exercises both
    result["value_at_risk"] = {
        "accounts_with_open_cases": len(open_customers),
        "annual_value_of_open_cases": sum(latest_value[c][1] for c in open_customers),
        "accounts_with_breached_open_cases": len(breached_open_customers),
        "annual_value_with_breached_open_cases": sum(latest_value[c][1] for c in breached_open_customers),
    }
    return result


def assert_close(ours, theirs, path: str = "metrics") -> None:  # noqa: ANN001
    if isinstance(theirs, dict):
        assert set(map(str, ours)) == set(map(str, theirs)), (
            f"{path}: keys {sorted(map(str, ours))} != {sorted(map(str, theirs))}"
        )
        by_str = {str(k): v for k, v in ours.items()}
        for key, value in theirs.items():
            assert_close(by_str[str(key)], value, f"{path}.{key}")
    elif isinstance(theirs, float):
        assert math.isclose(float(ours), theirs, rel_tol=1e-9, abs_tol=1e-6), f"{path}: {ours} != {theirs}"
    else:
        assert Decimal(str(ours)) == Decimal(str(theirs)) if isinstance(theirs, Decimal) else ours == theirs, (
            f"{path}: {ours} != {theirs}"
        )


async def test_metrics_on_ten_thousand_cases_match_an_independent_computation(
    own_pool: asyncpg.Pool, histories: list[list[NewEvent]]
) -> None:
    store = EventStore(own_pool)
    queue = list(histories)

    async def writer() -> None:
        while queue:
            events = queue.pop()
            await store.append(events[0].stream_id, 0, events)

    await asyncio.gather(*(writer() for _ in range(8)))
    await Projector(own_pool, [CaseListProjection()], batch_size=2000).catch_up()
    async with own_pool.acquire() as conn:
        ours = await compute_metrics(conn)
    theirs = independent_metrics(histories)
    assert ours["cases"] + ours["withdrawn"] == CASES and ours["withdrawn"] > 0
    assert_close(ours, theirs)
