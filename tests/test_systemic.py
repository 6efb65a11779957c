"""Systemic issues and accounts at risk, with the thresholds of the pinned policy (3 cases or 2 customers in 30 days)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from events.store import EventStore
from projections.runner import Projector
from projections.systemic import SystemicProjection
from samples.cases import T0, Case, command
from workflows.core.commands import Acknowledge, ProposeResolution, RecordCustomerResponse
from workflows.core.events import Customer, NewEvent
from workflows.core.vocabulary import CustomerTier, RootCause, Severity

D = timedelta(days=1)


def resolved_case(case_id: str, customer: str, root_cause: RootCause, opened_after: timedelta) -> list[NewEvent]:
    """A case opened ``opened_after`` past T0 and resolved a day later with ``root_cause``."""
    case = Case(
        case_id=case_id,
        start=T0 + opened_after,
        severity=Severity.SEV4,
        customer=Customer(id=customer, name=customer, tier=CustomerTier.STANDARD),
    )
    case.do(command(Acknowledge), after=timedelta(minutes=5))
    case.do(command(ProposeResolution, summary="s", root_cause=root_cause, root_cause_text="t"), after=D)
    case.do(command(RecordCustomerResponse, accepted=True), after=timedelta(hours=1))
    return case.events


async def project(pool: asyncpg.Pool, histories: list[list[NewEvent]]) -> None:
    store = EventStore(pool)
    for events in sorted(histories, key=lambda h: h[0].occurred_at):
        await store.append(events[0].stream_id, 0, events)
    await Projector(pool, [SystemicProjection()]).catch_up()


async def test_a_root_cause_seen_at_two_customers_within_the_window_is_a_systemic_issue(own_pool: asyncpg.Pool) -> None:
    await project(
        own_pool,
        [
            resolved_case("sys-a", "alpha", RootCause.DOCUMENTATION, 0 * D),
            resolved_case("sys-b", "beta", RootCause.DOCUMENTATION, 5 * D),
            resolved_case("sys-c", "gamma", RootCause.STAFFING, 6 * D),
            # Same cause, far outside the 30-day window of the others: not counted with them.
            resolved_case("sys-d", "delta", RootCause.STAFFING, 90 * D),
        ],
    )
    async with own_pool.acquire() as conn:
        issues = {r["root_cause"]: r for r in await conn.fetch("SELECT * FROM systemic_issues")}
    assert set(issues) == {"documentation"}
    assert issues["documentation"]["case_ids"] == ["sys-a", "sys-b"] and issues["documentation"]["customer_count"] == 2


async def test_an_account_with_three_escalations_in_the_window_is_flagged_at_risk(own_pool: asyncpg.Pool) -> None:
    await project(
        own_pool,
        [
            resolved_case("risk-1", "omega", RootCause.PROCESS, 0 * D),
            resolved_case("risk-2", "omega", RootCause.CONFIGURATION, 10 * D),
            resolved_case("risk-3", "omega", RootCause.THIRD_PARTY, 20 * D),
            resolved_case("calm-1", "sigma", RootCause.OTHER, 0 * D),
            resolved_case("calm-2", "sigma", RootCause.COMMUNICATION, 45 * D),
            resolved_case("calm-3", "sigma", RootCause.BILLING_ERROR, 90 * D),
        ],
    )
    async with own_pool.acquire() as conn:
        risky = {r["customer_id"]: r for r in await conn.fetch("SELECT * FROM accounts_at_risk")}
    assert set(risky) == {"omega"} and risky["omega"]["case_ids"] == ["risk-1", "risk-2", "risk-3"]
