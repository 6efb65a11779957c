"""People, teams and routing on real PostgreSQL and Temporal: every case reaches a named owner, every level
has named responders, recorded as the directory said at that moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.services import Services
from events import policy_versions
from events.directory_store import DirectoryStore
from projections.audit_trail import describe
from projections.case_list import CaseListProjection
from projections.runner import Projector
from samples.cases import AGENT, open_command
from tests.api_support import ApiStack
from tests.temporal_fixtures import running_worker
from workflows.core.directory import CaseFactsForRouting, matching_rule
from workflows.core.events import Actor, CustomerInput, Escalated, Opened, stream_id_for
from workflows.core.simulation import compare
from workflows.core.vocabulary import Category, CustomerTier, LifecycleStage, Priority, Role, Severity
from workflows.directory_files import DirectoryFileError, import_directory, team_calendar
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

M = timedelta(minutes=1)
ADMIN = Actor(id="root", role=Role.ADMIN)


def zones_working_and_not(now: datetime) -> tuple[str, str]:
    """A zone where 09:00-17:00 holds ``now`` with an hour to spare, and one where it is night."""
    working = sleeping = None
    for offset in range(-12, 13):
        zone = "Etc/UTC" if offset == 0 else f"Etc/GMT{'+' if offset > 0 else '-'}{abs(offset)}"
        local = (now - timedelta(hours=offset)).hour  # Etc/GMT+N is N hours behind UTC
        if 10 <= local <= 15 and working is None:
            working = zone
        if (local >= 20 or local <= 5) and sleeping is None:
            sleeping = zone
    assert working and sleeping
    return working, sleeping


def directory_text(manager: str = "mgr") -> str:
    working, sleeping = zones_working_and_not(datetime.now(UTC))
    every_day = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    hours = ", ".join(f'{d} = ["09:00-17:00"]' for d in every_day)
    people = "".join(
        f'[[people]]\nid = "{pid}"\nname = "{name}"\ntime_zone = "{zone}"\n\n'
        for pid, name, zone in [
            ("busy", "Busy Bee", working),
            ("idle", "Ida Idle", working),
            ("sleeper", "Sam Sleeper", sleeping),
            ("mgr", "Maria Manager", working),
            ("mgr2", "Mark Manager", working),
            ("dir", "Dora Director", working),
            ("sponsor", "Eve Sponsor", working),
            ("front", "Fran Front", working),
        ]
    )
    return (
        people
        + f"""[[teams]]
id = "platform"
name = "Platform"
members = ["busy", "idle", "sleeper"]
escalation_manager = "{manager}"
director = "dir"
calendar = {{ time_zone = "Etc/UTC", hours = {{ {hours} }} }}

[[teams]]
id = "support"
name = "Support"
members = ["front"]
escalation_manager = "mgr"
director = "dir"

[[teams]]
id = "billing"
name = "Billing"
members = ["front"]
escalation_manager = "mgr"
director = "dir"

[[accounts]]
id = "strat"
name = "Strategic Co"
tier = "strategic"
annual_value = 2000000
executive_sponsor = "sponsor"

[directors]
technical = "dir"
"""
    )


async def test_a_p1_is_routed_to_the_least_loaded_member_working_now_and_each_level_names_its_responders(
    time_skipping_env: WorkflowEnvironment, own_pool: asyncpg.Pool
) -> None:
    env, pool = time_skipping_env, own_pool
    directory = DirectoryStore(pool, team_calendar)
    await import_directory(directory, directory_text(), actor=ADMIN, reason="test directory")
    policy = load_policy(DEFAULT_POLICY_PATH)
    customer = CustomerInput(id="strat")  # the id alone: tier and value come from the stored account
    async with running_worker(env.client, pool, policy) as cases:
        await opened_on(cases, open_command("route-1", severity=Severity.SEV1, customer=customer))
        await Projector(pool, [CaseListProjection()]).catch_up()  # busy now has an active case
        await opened_on(cases, open_command("route-2", severity=Severity.SEV1, customer=customer))
        store = cases_store(pool)
        opened = [(await store.read_stream(stream_id_for(c)))[0].data for c in ("route-1", "route-2")]
        assert all(isinstance(o, Opened) and o.route is not None for o in opened)
        one, two = (o.route for o in opened if isinstance(o, Opened))
        assert one is not None and two is not None
        assert opened[0].customer.tier == CustomerTier.STRATEGIC and opened[0].priority == Priority.P1
        assert opened[0].customer.annual_value == Decimal(2_000_000)
        assert (one.rule, one.team, one.owner) == ("technical-urgent", "platform", "busy")  # a tie: member order
        assert (two.rule, two.team, two.owner) == ("technical-urgent", "platform", "idle")  # busy holds one case
        considered = {c.person: (c.active_cases, c.working_now) for c in two.candidates}
        assert considered == {"busy": (1, True), "idle": (0, True), "sleeper": (0, False)}
        assert [r.id for r in two.responders] == ["idle"]  # level 1: the owner

        # Nobody acknowledges: level 2 is the team's escalation manager.
        await env.sleep(16 * M)
        events = await store.read_stream(stream_id_for("route-2"))
        escalations = [e for e in events if isinstance(e.data, Escalated)]
        assert [(e.data.to_level, [r.id for r in e.data.responders]) for e in escalations] == [(2, ["mgr"])]
        breach_at = escalations[0].recorded_at

        # The directory changes; the record keeps who was told then.
        await directory.put(
            "teams",
            "platform",
            {**(await directory.get("teams", "platform") or {}), "escalation_manager": "mgr2"},
            actor=ADMIN,
            reason="new manager",
        )
        await env.sleep(15 * M)  # level 3: the category's director
        await env.sleep(15 * M)  # level 4: the account's executive sponsor
        events = await store.read_stream(stream_id_for("route-2"))
        escalations = [e.data for e in events if isinstance(e.data, Escalated)]
        assert [(e.to_level, [r.id for r in e.responders], [r.via for r in e.responders]) for e in escalations] == [
            (2, ["mgr"], ["role:escalation_manager"]),
            (3, ["dir"], ["category:director"]),
            (4, ["sponsor"], ["account:executive_sponsor"]),
        ]
        words = [describe(e)[1] for e in events if isinstance(e.data, Escalated)]
        assert "Maria Manager (mgr, role:escalation_manager)" in words[0]
        as_then = await directory.get("teams", "platform", as_of=breach_at)
        assert as_then is not None and as_then["escalation_manager"] == "mgr"

        # A shadow run over the recorded cases reproduces every route exactly.
        for case_id in ("route-1", "route-2"):
            comparison = compare(await store.read_stream(stream_id_for(case_id)), policy)
            assert comparison.route_actual is not None and comparison.route_actual == comparison.route_simulated


async def opened_on(cases, command) -> None:  # noqa: ANN001
    from workflows.client import open_case_and_wait

    await open_case_and_wait(cases.client, command, task_queue=cases.task_queue)
    cases.track(command.case_id)


def cases_store(pool: asyncpg.Pool):  # noqa: ANN201
    from events.store import EventStore

    return EventStore(pool)


async def test_the_first_rule_that_matches_wins_and_no_match_goes_to_the_default_team() -> None:
    policy = load_policy(DEFAULT_POLICY_PATH)

    def facts(category: Category, priority: Priority) -> CaseFactsForRouting:
        return CaseFactsForRouting(
            category=category,
            severity=Severity.SEV2,
            priority=priority,
            tier=CustomerTier.ENTERPRISE,
            lifecycle_stage=LifecycleStage.ONGOING_SUPPORT,
            customer_id="x",
        )

    assert matching_rule(policy, facts(Category.TECHNICAL, Priority.P1))[:2] == ("technical-urgent", "platform")
    assert matching_rule(policy, facts(Category.TECHNICAL, Priority.P3))[:2] == ("default", "support")
    assert matching_rule(policy, facts(Category.BILLING, Priority.P4))[:2] == ("money", "billing")


async def test_a_policy_whose_level_resolves_to_nobody_is_refused_at_publish_naming_the_level(
    own_pool: asyncpg.Pool,
) -> None:
    directory = DirectoryStore(own_pool, team_calendar)
    text = directory_text().replace(
        'escalation_manager = "mgr"\ndirector = "dir"\n\n[[teams]]\nid = "billing"',
        ('director = "dir"\n\n[[teams]]\nid = "billing"'),
    )
    await import_directory(directory, text, actor=ADMIN, reason="support has no escalation manager")
    with pytest.raises(policy_versions.PolicyRefused) as refused:
        await policy_versions.publish(own_pool, load_policy(DEFAULT_POLICY_PATH), author="ops", reason="r")
    assert refused.value.rule == "policy.level_without_responders"
    assert "level 2 (escalation manager) resolves to nobody for team 'support'" in str(refused.value)
    assert await policy_versions.list_versions(own_pool) == []  # nothing written


async def test_a_malformed_directory_file_is_refused_with_its_line_and_changes_nothing(own_pool: asyncpg.Pool) -> None:
    directory = DirectoryStore(own_pool, team_calendar)
    text = directory_text().replace('members = ["busy", "idle", "sleeper"]', 'members = ["busy", "idle", "nobody"]')
    line = next(i for i, t in enumerate(text.splitlines(), 1) if '"nobody"' in t)
    with pytest.raises(DirectoryFileError) as refused:
        await import_directory(directory, text, actor=ADMIN, reason="r")
    assert (refused.value.rule, refused.value.line) == ("directory.unknown_person", line)
    broken = directory_text().replace('name = "Ida Idle"', 'name = "Ida Idle"\nemail = "not an address"')
    with pytest.raises(DirectoryFileError) as invalid:
        await import_directory(directory, broken, actor=ADMIN, reason="r")
    assert invalid.value.rule == "directory.invalid_entry"
    assert broken.splitlines()[invalid.value.line - 1].startswith("email")
    with pytest.raises(DirectoryFileError) as syntax:
        await import_directory(directory, "[[people]]\nid = \n", actor=ADMIN, reason="r")
    assert (syntax.value.rule, syntax.value.line) == ("directory.toml_syntax", 2)
    assert await directory.entries("people") == [] and await directory.changes() == []


async def test_directory_edits_need_an_admin_and_are_logged_with_their_actor(
    stack: ApiStack, http: httpx.AsyncClient
) -> None:
    base = stack.base_url + "/v1/directory"
    person = {"id": "pat-routing", "name": "Pat"}
    for role in (Role.AGENT, Role.MANAGER, Role.EXECUTIVE, Role.SERVICE, Role.AUDITOR):
        put = await http.put(f"{base}/people/pat-routing", json=person, headers=stack.headers(role))
        assert put.status_code == 403 and put.json()["rule"] == "permission.directory", put.text
        load = await http.post(f"{base}/import", content=b'[[people]]\nid="x"\nname="x"\n', headers=stack.headers(role))
        assert load.status_code == 403 and load.json()["rule"] == "permission.directory"
    assert (await http.get(f"{base}/people/pat-routing", headers=stack.headers(Role.AGENT))).status_code == 404
    put = await http.put(f"{base}/people/pat-routing", json=person, headers=stack.headers(Role.ADMIN))
    assert put.status_code == 200, put.text
    read = await http.get(f"{base}/people/pat-routing", headers=stack.headers(Role.AGENT))
    assert read.status_code == 200 and read.json()["name"] == "Pat"
    bad = await http.post(
        f"{base}/import",
        content=b'[[people]]\nid = "q-routing"\nname = "Q"\nroles = ["wizard"]\n',
        headers=stack.headers(Role.ADMIN),
    )
    assert bad.status_code == 422 and bad.json()["rule"] == "directory.invalid_entry" and bad.json()["line"] == 4
    assert (await http.get(f"{base}/people/q-routing", headers=stack.headers(Role.ADMIN))).status_code == 404
    zone = await http.put(
        f"{base}/people/pat-routing", json={**person, "time_zone": "__init__.py"}, headers=stack.headers(Role.ADMIN)
    )
    assert zone.status_code == 422 and zone.json()["rule"] == "directory.bad_time_zone", zone.text
    holidays = await http.put(
        f"{base}/teams/t-routing",
        json={"id": "t-routing", "name": "T", "calendar": {"time_zone": "UTC", "holidays": "GB"}},
        headers=stack.headers(Role.ADMIN),
    )
    assert holidays.status_code == 422 and holidays.json()["rule"] == "directory.bad_calendar", holidays.text
    mismatch = await http.put(f"{base}/people/other-id", json=person, headers=stack.headers(Role.ADMIN))
    assert mismatch.status_code == 422 and mismatch.json()["rule"] == "directory.id_mismatch"
    log = await http.get(
        f"{base}/changes", params={"kind": "people", "id": "pat-routing"}, headers=stack.headers(Role.AUDITOR)
    )
    changes = log.json()["changes"]
    assert [(c["actor_role"], c["doc"]["name"]) for c in changes] == [("admin", "Pat")]


async def test_a_customer_without_a_stored_account_must_be_described(
    time_skipping_env: WorkflowEnvironment, own_pool: asyncpg.Pool
) -> None:
    from workflows.client import CommandRefused

    async with running_worker(time_skipping_env.client, own_pool, load_policy(DEFAULT_POLICY_PATH)) as cases:
        with pytest.raises(CommandRefused) as refused:
            await opened_on(cases, open_command("no-account", customer=CustomerInput(id="stranger"), actor=AGENT))
    assert refused.value.rule == "open.unknown_customer"


_ = Services  # the API's services build the same DirectoryStore


def test_a_reassignment_across_teams_is_a_hand_off_recorded_with_both_teams() -> None:
    from samples.cases import Case, command
    from workflows.core.commands import AssignOwner
    from workflows.core.events import OwnerAssigned

    case = Case(policy=load_policy(DEFAULT_POLICY_PATH), severity=Severity.SEV4)  # P3: the default team
    assert (
        case.state is not None and case.state.team == "support" and case.state.owner is None
    )  # routed, unowned: no directory here
    case.do(command(AssignOwner, owner="ana"), after=M)  # taking it from the queue: no hand-off
    case.do(command(AssignOwner, owner="ben", team="platform"), after=M)
    assigned = [e.data for e in case.events if isinstance(e.data, OwnerAssigned)]
    assert [(a.is_handoff, a.from_team, a.team) for a in assigned] == [
        (False, None, None),
        (True, "support", "platform"),
    ]
    assert case.state.team == "platform" and case.state.handoffs == 1
    case.do(command(AssignOwner, owner="ben", team="billing"), after=M)  # same owner, another team: a hand-off
    assert case.state.team == "billing" and case.state.handoffs == 2


async def test_assigning_someone_outside_their_working_hours_is_allowed_with_a_warning(
    stack: ApiStack, http: httpx.AsyncClient
) -> None:
    from tests.api_support import open_body, post

    services = Services(pool=stack.pool, client=stack.client, policy=load_policy(DEFAULT_POLICY_PATH), task_queue="")
    working, sleeping = zones_working_and_not(datetime.now(UTC))
    hours = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    await services.directory.put(
        "people", "owl-routing", {"id": "owl-routing", "name": "Owl", "time_zone": sleeping}, actor=ADMIN
    )
    await services.directory.put(
        "people", "lark-routing", {"id": "lark-routing", "name": "Lark", "time_zone": working}, actor=ADMIN
    )
    opened = await post(http, stack, "/v1/escalations", Role.SERVICE, open_body(severity="sev4"))
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["state"]["case_id"]
    team = "night-and-day-routing"
    await services.directory.put(
        "teams",
        team,
        {
            "id": team,
            "name": team,
            "members": ["owl-routing", "lark-routing"],
            "calendar": {"time_zone": "Etc/UTC", "hours": hours},
        },
        actor=ADMIN,
    )
    night = await post(
        http, stack, f"/v1/escalations/{case_id}/assign", Role.MANAGER, {"owner": "owl-routing", "team": team}
    )
    assert night.status_code == 200, night.text
    assert (night.json()["state"]["owner"], night.json()["state"]["team"]) == ("owl-routing", team)
    assert [w.split(":")[0] for w in night.json()["warnings"]] == ["assign.outside_working_hours"]
    day = await post(http, stack, f"/v1/escalations/{case_id}/assign", Role.MANAGER, {"owner": "lark-routing"})
    assert day.status_code == 200 and day.json()["warnings"] == []
    stranger = await post(http, stack, f"/v1/escalations/{case_id}/assign", Role.MANAGER, {"owner": "nobody-routing"})
    assert [w.split(":")[0] for w in stranger.json()["warnings"]] == ["assign.unknown_person"]


async def test_the_metrics_give_the_annual_value_of_accounts_with_open_and_with_breached_open_cases(
    own_pool: asyncpg.Pool,
) -> None:
    from events.store import EventStore
    from projections.metrics import compute_metrics
    from samples.cases import Case, command
    from workflows.core.commands import Acknowledge, ProposeResolution, RecordCustomerResponse
    from workflows.core.events import Customer
    from workflows.core.vocabulary import RootCause

    def customer(cid: str, value: int) -> Customer:
        return Customer(id=cid, name=cid, tier=CustomerTier.STANDARD, annual_value=Decimal(value))

    late = Case(case_id="var-late", severity=Severity.SEV4, customer=customer("late", 1000))
    late.advance(timedelta(days=2))  # its acknowledge deadline (1 day) passed: breached
    calm = Case(case_id="var-calm", severity=Severity.SEV4, customer=customer("calm", 500))
    calm.do(command(Acknowledge), after=M)
    done = Case(case_id="var-done", severity=Severity.SEV4, customer=customer("done", 200))
    done.do(command(Acknowledge), after=M)
    done.do(command(ProposeResolution, summary="s", root_cause=RootCause.OTHER, root_cause_text="t"), after=M)
    done.do(command(RecordCustomerResponse, accepted=True), after=M)
    store = EventStore(own_pool)
    for case in (late, calm, done):
        await store.append(case.events[0].stream_id, 0, case.events)
    await Projector(own_pool, [CaseListProjection()]).catch_up()
    async with own_pool.acquire() as conn:
        value = (await compute_metrics(conn))["value_at_risk"]
    assert value == {
        "accounts_with_open_cases": 2,
        "annual_value_of_open_cases": "1500",
        "accounts_with_breached_open_cases": 1,
        "annual_value_with_breached_open_cases": "1000",
    }


def test_each_strategy_picks_its_owner_and_says_why() -> None:
    from workflows.core.directory import TeamCandidates, route_case
    from workflows.core.events import RouteCandidate
    from workflows.core.policy import RoutingRules
    from workflows.core.vocabulary import RoutingStrategy

    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    candidates = [
        RouteCandidate(person="a", active_cases=3, working_now=True, last_routed_at=t0),
        RouteCandidate(person="b", active_cases=1, working_now=True, last_routed_at=t0 + M),
        RouteCandidate(person="c", active_cases=0, working_now=False, last_routed_at=None, on_call_rank=1),
        RouteCandidate(person="d", active_cases=5, working_now=True, last_routed_at=t0 - M),
        RouteCandidate(person="e", active_cases=9, working_now=False, on_call_rank=0),
    ]
    facts = CaseFactsForRouting(
        category=Category.OTHER,
        severity=Severity.SEV3,
        priority=Priority.P3,
        tier=CustomerTier.STANDARD,
        lifecycle_stage=LifecycleStage.ONBOARDING,
        customer_id="x",
    )

    def route(strategy: RoutingStrategy, people: list[RouteCandidate]) -> tuple[str | None, str]:
        base = load_policy(DEFAULT_POLICY_PATH)
        policy = base.model_copy(
            update={"routing": RoutingRules(default_team="t", default_strategy=strategy, rules=[])}
        )
        r = route_case(policy, facts, TeamCandidates(team="t", known=True, candidates=people))
        return r.owner, r.why

    # Least active among those working now (c has fewer cases but is off).
    assert route(RoutingStrategy.LEAST_ACTIVE, candidates)[0] == "b"
    # Round robin: the working member routed to least recently (d, a minute before a).
    assert route(RoutingStrategy.ROUND_ROBIN, candidates)[0] == "d"
    never = [*candidates, RouteCandidate(person="f", active_cases=7, working_now=True)]
    assert route(RoutingStrategy.ROUND_ROBIN, never)[0] == "f"  # never routed to: first
    assert route(RoutingStrategy.QUEUE, candidates)[0] is None
    asleep = [c.model_copy(update={"working_now": False}) for c in candidates]
    owner, why = route(RoutingStrategy.LEAST_ACTIVE, asleep)
    assert owner == "e" and "on call" in why  # nobody working: the first on call
    no_on_call = [c.model_copy(update={"on_call_rank": None}) for c in asleep]
    owner, why = route(RoutingStrategy.LEAST_ACTIVE, no_on_call)
    assert owner is None and "queue" in why


def test_a_valuable_account_raises_the_priority_by_the_policy_uplift() -> None:
    policy = load_policy(DEFAULT_POLICY_PATH)  # at least 1,000,000 a year: one step up
    assert policy.priority_for(Severity.SEV3, CustomerTier.ENTERPRISE, Decimal(999_999)) == Priority.P3
    assert policy.priority_for(Severity.SEV3, CustomerTier.ENTERPRISE, Decimal(1_000_000)) == Priority.P2
    assert policy.priority_for(Severity.SEV1, CustomerTier.STRATEGIC, Decimal(5_000_000)) == Priority.P1  # the top


def test_the_shell_refuses_a_directory_change_by_anyone_but_an_admin(tmp_path) -> None:  # noqa: ANN001
    import subprocess
    import sys
    from pathlib import Path

    file = tmp_path / "d.toml"
    file.write_text('[[people]]\nid = "x"\nname = "X"\n')
    done = subprocess.run(
        [Path(sys.executable).parent / "escalations", "directory", "import", str(file), "--as", "manager:m"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3 and "permission.directory" in done.stderr
