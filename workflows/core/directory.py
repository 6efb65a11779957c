"""The directory the domain routes by: people, teams, accounts and directors, and the pure rules over them.

Entries live in PostgreSQL (``events/directory_store.py``); this module holds their models (what a valid
entry is) and the decisions that use them, without I/O:

* ``route_case`` picks the team (the first matching routing rule, else the policy's default team) and the
  owner among candidates the caller looked up, and says why. The candidates are recorded in the opening
  event, so a shadow run reproduces the route from the record alone.
* ``responders_for`` turns a level's responder specs, as the caller resolved them from the directory at
  that moment, into the people recorded in the escalation event.
* ``customer_for`` completes a customer sent by id alone from its stored account.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from workflows.core.errors import DomainError
from workflows.core.events import Customer, CustomerInput, Money, Responder, Route, RouteCandidate, ShortText
from workflows.core.notification_rules import Channel
from workflows.core.policy import DEFAULT_ROUTE, Level, Policy, RoutingRule
from workflows.core.responder_specs import ACCOUNT_SPECS
from workflows.core.vocabulary import Category, CustomerTier, LifecycleStage, Priority, Role, RoutingStrategy, Severity

EntryId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QuietHours(_Entry):
    """Hours (in the person's time zone) when email and chat wait, unless the case's priority overrides
    them (P1 by default); the inbox never waits. ``start`` after ``end`` spans midnight."""

    start: time
    end: time


class Person(_Entry):
    id: EntryId
    name: ShortText
    email: Email | None = None
    chat: ShortText | None = None  # a chat handle, e.g. "@ana", mentioned in chat messages
    time_zone: ShortText | None = None  # an IANA zone, checked where tzdata is at hand
    roles: list[Role] = []
    # How they want to hear of cases, in order (empty: inbox, email and chat, as far as they are reachable).
    channels: list[Channel] = []
    chat_channel: EntryId | None = None  # a chat channel of their own (else their case's team's)
    quiet_hours: QuietHours | None = None


class Team(_Entry):
    id: EntryId
    name: ShortText
    members: list[EntryId] = []
    # Working hours as a policy calendar is written (time_zone, hours, holidays, closed); None: always working.
    # A member whose time zone the directory knows works these hours in that zone.
    calendar: dict[str, Any] | None = None
    on_call: list[EntryId] = []  # in order: who takes a case when no member is working
    chat_channel: EntryId | None = None  # the configured chat channel the team hears on
    escalation_manager: EntryId | None = None
    director: EntryId | None = None

    @model_validator(mode="after")
    def _on_call_are_members(self) -> Team:
        strangers = [p for p in self.on_call if p not in self.members]
        if strangers:
            raise ValueError(f"on_call names people who are not members of team {self.id!r}: {strangers}")
        if len(set(self.members)) != len(self.members):
            raise ValueError(f"team {self.id!r} names a member twice")
        return self

    def people(self) -> list[str]:
        """Every person this team names."""
        named = [*self.members, self.escalation_manager, self.director]
        return [p for p in dict.fromkeys(named) if p is not None]


class Account(_Entry):
    id: EntryId
    name: ShortText
    tier: CustomerTier
    annual_value: Money = Decimal(0)
    time_zone: ShortText | None = None
    executive_sponsor: EntryId | None = None
    account_manager: EntryId | None = None

    def people(self) -> list[str]:
        return [p for p in (self.executive_sponsor, self.account_manager) if p is not None]


class Director(_Entry):
    """The director answering for one category of cases."""

    category: Category
    person: EntryId


KINDS = ("people", "teams", "accounts", "directors")
Kind = Literal["people", "teams", "accounts", "directors"]
MODELS: dict[str, type[_Entry]] = {"people": Person, "teams": Team, "accounts": Account, "directors": Director}


def entry_id(kind: str, entry: _Entry) -> str:
    if isinstance(entry, Director):
        return str(entry.category.value)
    assert isinstance(entry, Person | Team | Account)
    return entry.id


def people_named(entry: _Entry) -> list[str]:
    """The people an entry refers to (each must exist in the directory)."""
    if isinstance(entry, Team | Account):
        return entry.people()
    if isinstance(entry, Director):
        return [entry.person]
    return []


# ------------------------------------------------------------------------------- opening


def customer_for(sent: CustomerInput, account: Account | None) -> Customer:
    """The customer a case opens with: what the caller sent, completed from the stored account."""
    name = sent.name or (account.name if account else None)
    tier = sent.tier or (account.tier if account else None)
    if name is None or tier is None:
        raise DomainError(
            "open.unknown_customer",
            f"customer {sent.id!r} has no stored account: send its name and tier, or add the account first",
        )
    value = sent.annual_value if sent.annual_value is not None else (account.annual_value if account else Decimal(0))
    return Customer(id=sent.id, name=name, tier=tier, annual_value=value, calendar=sent.calendar, contact=sent.contact)


class CaseFactsForRouting(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: Category
    severity: Severity
    priority: Priority
    tier: CustomerTier
    lifecycle_stage: LifecycleStage
    customer_id: str


def _matches(rule: RoutingRule, f: CaseFactsForRouting) -> bool:
    return (
        (not rule.category or f.category in rule.category)
        and (not rule.severity or f.severity in rule.severity)
        and (not rule.priority or f.priority in rule.priority)
        and (not rule.tier or f.tier in rule.tier)
        and (not rule.lifecycle_stage or f.lifecycle_stage in rule.lifecycle_stage)
        and (not rule.customer_id or f.customer_id in rule.customer_id)
    )


def matching_rule(policy: Policy, facts: CaseFactsForRouting) -> tuple[str, str, RoutingStrategy]:
    """(rule name, team, strategy): the first rule that matches, else the default team (rule ``default``)."""
    routing = policy.routing
    assert routing is not None, "only a policy with routing rules routes"
    for rule in routing.rules:
        if _matches(rule, facts):
            return rule.name, rule.team, rule.strategy
    return DEFAULT_ROUTE, routing.default_team, routing.default_strategy


class TeamCandidates(BaseModel):
    """A team as the directory showed it when a case was routed: who could own the case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team: str
    known: bool  # False: the directory has no such team (the case waits in its queue, said so)
    candidates: list[RouteCandidate] = []  # the members, in the team's order


class OpeningContext(BaseModel):
    """What the directory said when a case was opened: its account, the matched team's candidates and who
    answers at level 1 (spec -> people). Looked up by the caller with the same pure rules it is used by."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account: Account | None = None
    team: TeamCandidates | None = None
    level_one: dict[str, list[Responder]] = {}


def route_case(policy: Policy, facts: CaseFactsForRouting, team: TeamCandidates | None) -> Route:
    """Where a new case goes and who owns it (see module doc); ``team`` is the matched team's candidates."""
    rule, team_id, strategy = matching_rule(policy, facts)
    if team is None or team.team != team_id:
        return Route(rule=rule, team=team_id, strategy=strategy, owner=None, why="the directory was not consulted")
    if not team.known:
        why = f"team {team_id!r} is not in the directory: the case waits in its queue"
        return Route(rule=rule, team=team_id, strategy=strategy, owner=None, why=why, team_known=False)
    owner, why = _pick_owner(strategy, team.candidates)
    return Route(
        rule=rule, team=team_id, strategy=strategy, owner=owner, why=why, candidates=team.candidates, team_known=True
    )


def recorded_context(route: Route | None) -> OpeningContext:
    """What routing saw, rebuilt from a recorded route (a shadow run's opening context)."""
    if route is None or route.team_known is None:
        return OpeningContext()
    level_one: dict[str, list[Responder]] = {}
    for responder in route.responders:
        level_one.setdefault(responder.via, []).append(responder)
    team = TeamCandidates(team=route.team, known=route.team_known, candidates=route.candidates)
    return OpeningContext(team=team, level_one=level_one)


def _pick_owner(strategy: RoutingStrategy, candidates: list[RouteCandidate]) -> tuple[str | None, str]:
    if strategy == RoutingStrategy.QUEUE:
        return None, "the team's queue: the first to take it owns it"
    if not candidates:
        return None, "the team has no members: the case waits in its queue"
    working = [c for c in candidates if c.working_now]
    pool = working
    if not working:
        on_call = sorted((c for c in candidates if c.on_call_rank is not None), key=lambda c: c.on_call_rank or 0)
        if on_call:
            return on_call[0].person, "nobody is working now: the first on call"
        return None, "nobody is working now and nobody is on call: the case waits in the team's queue"
    order = {c.person: i for i, c in enumerate(candidates)}
    if strategy == RoutingStrategy.ROUND_ROBIN:
        # Never routed to comes first; then the longest since; ties in the team's order.
        chosen = min(
            pool,
            key=lambda c: (
                c.last_routed_at is not None,
                c.last_routed_at.timestamp() if c.last_routed_at else 0.0,
                order[c.person],
            ),
        )
        return chosen.person, f"round robin: routed to least recently of {len(pool)} working now"
    chosen = min(pool, key=lambda c: (c.active_cases, order[c.person]))
    return chosen.person, f"least active ({chosen.active_cases} active cases) of {len(pool)} working now"


# ------------------------------------------------------------------------------- levels


def level_specs(level: Level) -> list[str]:
    return [*level.responders, *level.fallback]


def responders_for(level: Level, resolved: Mapping[str, list[Responder]]) -> list[Responder]:
    """The people who answer at ``level``: its responders as resolved, else its fallback; each once."""
    for specs in (level.responders, level.fallback):
        found: dict[str, Responder] = {}
        for spec in specs:
            for person in resolved.get(spec, []):
                found.setdefault(person.id, person)
        if found:
            return list(found.values())
    return []


def unresolvable_levels(policy: Policy, resolve: Any) -> list[str]:
    """Problems of levels that would reach nobody, for some team routing can choose and some category.

    ``resolve(spec, team, category) -> list[str]`` answers from the directory as it is now. ``owner`` may be
    unset (a queued case) and account specs cannot be answered before a case names its account, so a level
    must not rely on them alone: another of its responders, or its fallback, must resolve.
    """
    problems = []
    teams: list[str | None] = list(policy.routing.teams()) if policy.routing is not None else [None]
    for level in policy.escalation.levels:
        dependable = [s for s in level_specs(level) if s not in ACCOUNT_SPECS and s != "owner"]
        if not level.responders and not level.fallback:
            continue  # a level that names nobody on purpose (responders not used by this policy)
        for team in teams:
            missing = [c for c in Category if not any(resolve(spec, team, c) for spec in dependable)]
            if missing:
                where = f"team {team!r}" if team is not None else "cases without a team"
                categories = ", ".join(c.value for c in missing)
                problems.append(f"level {level.level} ({level.name}) resolves to nobody for {where} ({categories})")
    return problems


class DirectoryFile(BaseModel):
    """A directory file (``escalations directory import``): every entry it holds is created or replaced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    people: list[Person] = []
    teams: list[Team] = []
    accounts: list[Account] = []
    directors: dict[Category, EntryId] = Field(default_factory=dict)

    def entries(self) -> list[tuple[str, str, _Entry]]:
        """(kind, id, entry) for every entry, people first (the others refer to them)."""
        out: list[tuple[str, str, _Entry]] = [("people", p.id, p) for p in self.people]
        out += [("teams", t.id, t) for t in self.teams]
        out += [("accounts", a.id, a) for a in self.accounts]
        out += [("directors", c.value, Director(category=c, person=p)) for c, p in self.directors.items()]
        return out
