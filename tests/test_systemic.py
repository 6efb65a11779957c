"""Systemic issues and accounts at risk, with the thresholds of the pinned policy (3 cases or 2 customers in 30 days)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from events.store import EventStore
from projections.runner import Projector
from projections.systemic import SystemicProjection
from samples.cases import MANAGER, T0, Case, command
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


async def test_issues_and_accounts_leave_the_list_when_their_cases_leave_the_window(own_pool: asyncpg.Pool) -> None:
    from projections.queries import systemic_issues

    await project(
        own_pool,
        [
            resolved_case("win-1", "kappa", RootCause.DOCUMENTATION, 0 * D),
            resolved_case("win-2", "lambda", RootCause.DOCUMENTATION, 2 * D),
            resolved_case("win-3", "kappa", RootCause.PROCESS, 4 * D),
            resolved_case("win-4", "kappa", RootCause.STAFFING, 6 * D),
        ],
    )
    async with own_pool.acquire() as conn:
        soon = await systemic_issues(conn, T0 + 10 * D)
        # Both resolutions of documentation are 2 days apart and 3 days later; the window is 30 days.
        assert [i["root_cause"] for i in soon["systemic_issues"]] == ["documentation"]
        assert [(a["customer_id"], a["cases_in_window"]) for a in soon["accounts_at_risk"]] == [("kappa", 3)]
        # 32 days after the first: win-1 (opened day 0, resolved day 1) left both windows.
        later = await systemic_issues(conn, T0 + 32 * D)
        assert later == {"systemic_issues": [], "accounts_at_risk": []}
        # The detections themselves stay recorded.
        assert await conn.fetchval("SELECT count(*) FROM accounts_at_risk") == 1


async def test_a_withdrawn_case_leaves_the_at_risk_and_systemic_counts(own_pool: asyncpg.Pool) -> None:
    from projections.queries import systemic_issues
    from workflows.core.commands import Withdraw
    from workflows.core.vocabulary import WithdrawReason

    duplicate = Case(
        case_id="dup-3",
        start=T0 + 3 * D,
        severity=Severity.SEV4,
        customer=Customer(id="mu", name="mu", tier=CustomerTier.STANDARD),
    )
    duplicate.do(command(Withdraw, MANAGER, reason=WithdrawReason.DUPLICATE), after=timedelta(minutes=5))
    await project(
        own_pool,
        [
            resolved_case("dup-1", "mu", RootCause.DOCUMENTATION, 0 * D),
            resolved_case("dup-2", "mu", RootCause.PROCESS, 1 * D),
            duplicate.events,
        ],
    )
    async with own_pool.acquire() as conn:
        now = await systemic_issues(conn, T0 + 5 * D)
        assert now["accounts_at_risk"] == []
        assert await conn.fetchval("SELECT withdrawn FROM systemic_cases WHERE case_id = 'dup-3'") is True
