"""Shadow runs: replaying recorded cases through the pure core under a candidate policy."""

from __future__ import annotations

import random
import time

from samples.cases import DEFAULT_POLICY
from samples.histories import generate_case
from tests.test_policy_change import slower_policy
from workflows.core.simulation import compare, recorded_commands, replay

CASES = 1000


def comparable(events):  # noqa: ANN001, ANN201
    """Everything about an event but its random id (the generator draws them)."""
    return [(e.version, e.occurred_at, e.actor, e.command_key, e.data) for e in events]


def test_the_unchanged_policy_reproduces_every_recorded_case_exactly() -> None:
    rng = random.Random(2026)
    histories = [generate_case(rng, i) for i in range(CASES)]
    started = time.perf_counter()
    for history in histories:
        replayed = replay(recorded_commands(history), DEFAULT_POLICY, history[-1].occurred_at)
        assert replayed.refused == [], replayed.refused
        assert comparable(replayed.events) == comparable(history), history[0].stream_id
    elapsed = time.perf_counter() - started
    print(f"replayed {CASES} cases ({sum(map(len, histories))} events) in {elapsed:.1f}s")
    comparisons = [compare(h, DEFAULT_POLICY) for h in histories]
    assert not any(c.changed for c in comparisons)
    assert sum(c.breaches_actual for c in comparisons) == sum(c.breaches_simulated for c in comparisons) > 0


def test_a_slower_policy_removes_breaches_and_reports_them() -> None:
    rng = random.Random(7)
    histories = [generate_case(rng, i) for i in range(300)]
    comparisons = [compare(h, slower_policy()) for h in histories]
    p1 = [c for c, h in zip(comparisons, histories, strict=True) if h[0].data.priority == "P1"]
    assert p1, "the sample has P1 cases"
    # P1's 15-minute acknowledge breaches fall on other instants (30 minutes) or not at all.
    assert sum(len(c.disappearing) for c in p1) > 0
    for c in p1:
        assert c.acknowledge_within_simulated == 2 * c.acknowledge_within_actual  # 15 -> 30 minutes
    # Other priorities' deadlines are untouched by a P1-only change.
    for c, h in zip(comparisons, histories, strict=True):
        if h[0].data.priority != "P1":
            assert not c.appearing and not c.disappearing, c


async def test_policy_simulate_reads_the_store_and_reports_exactly_for_the_unchanged_policy(
    server_dsn: str, tmp_path
) -> None:  # noqa: ANN001
    import json

    from events.store import EventStore
    from samples.histories import append_history
    from tests.projection_support import fresh_pool
    from tests.test_policy_versions import cli

    async for pool, url in fresh_pool(server_dsn):
        rng = random.Random(3)
        histories = [generate_case(rng, i) for i in range(150)]
        await append_history(EventStore(pool), histories)
        before = await pool.fetchval("SELECT count(*) FROM events")
        same = await cli(url, "127.0.0.1:1", "policy", "simulate", "policies/default.toml", "--json")
        assert same.returncode == 0, same.stderr
        totals = json.loads(same.stdout)["totals"]
        assert totals["cases"] == 150 and totals["cases_that_would_differ"] == 0
        assert (
            totals["breaches_actual"]
            == totals["breaches_simulated"]
            == sum(1 for h in histories for e in h if e.type == "escalation.deadline_breached")
        )
        slower_file = tmp_path / "slower.json"
        slower_file.write_text(json.dumps(slower_policy().content()))
        other = await cli(url, "127.0.0.1:1", "policy", "simulate", str(slower_file))
        assert other.returncode == 0, other.stderr
        assert "breaches disappearing" in other.stdout and "cases that would differ" in other.stdout
        since = await cli(
            url, "127.0.0.1:1", "policy", "simulate", "policies/default.toml", "--json", "--since", "2099-01-01"
        )
        assert json.loads(since.stdout)["totals"]["cases"] == 0
        assert await pool.fetchval("SELECT count(*) FROM events") == before  # nothing written


def test_a_customer_accepting_while_the_case_is_paused_replays_as_the_acceptance() -> None:
    """The acceptance's events begin with the Resumed that closes the pause; replaying that as a resume
    (as the shadow run once did) dropped the resolution from the simulated case."""
    from datetime import timedelta

    from samples.cases import MANAGER, Case, command
    from workflows.core.commands import (
        Acknowledge,
        Pause,
        ProposeResolution,
        RecordCustomerResponse,
        SignOff,
    )

    case = Case()
    case.do(command(Acknowledge), after=timedelta(minutes=5))
    case.do(command(ProposeResolution, summary="s", root_cause="other", root_cause_text="t"))
    case.do(command(Pause, reason="waiting_on_customer"), after=timedelta(minutes=5))
    if case.s.proposal and case.s.proposal.awaiting_sign_off:
        case.do(command(SignOff, actor=MANAGER))
    case.do(command(RecordCustomerResponse, accepted=True), after=timedelta(hours=1))
    assert case.types()[-3:] == ["resumed", "customer_responded", "resolved"]
    recorded = recorded_commands(case.events)
    assert type(recorded[-1].command) is RecordCustomerResponse
    replayed = replay(recorded, DEFAULT_POLICY, case.now)
    assert replayed.refused == []
    assert comparable(replayed.events) == comparable(case.events)
