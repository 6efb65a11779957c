"""The directory in PostgreSQL: current entries, and the append-only log of every change with its actor.

Writes are serialised (one advisory lock) and each is one transaction: the entries change and the log
gains a row per change, or nothing happens. A write that would leave an entry naming a person the
directory does not hold is refused whole (``directory.unknown_person``, ``directory.person_in_use``).
``as_of`` reads fold the log, so an auditor sees who belonged to which team when.

The lookups at the end serve the workflow's activities: a new case's account and its team's candidates
(load from the case list, working now by the team's calendar), and the people a level's responder specs
name at this moment.
"""

from __future__ import annotations

import functools
import json
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from workflows.core.calendar import BusinessCalendar
from workflows.core.directory import (
    KINDS,
    MODELS,
    Account,
    Person,
    Team,
    TeamCandidates,
    entry_id,
    people_named,
    unresolvable_levels,
)
from workflows.core.events import Actor, Responder, RouteCandidate
from workflows.core.policy import Policy
from workflows.core.state import ACTIVE
from workflows.core.vocabulary import Category

_LOCK = 0x6573635F646972  # advisory key "esc_dir": directory writes one at a time
_ACTIVE = sorted(s.value for s in ACTIVE)


class DirectoryError(ValueError):
    """A directory write refused: ``rule`` names the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{message} (rule {rule})")
        self.rule = rule
        self.message = message


# A team's working calendar, resolved (the adapter that reads tzdata and holidays is the caller's).
CalendarOf = Callable[[Team], BusinessCalendar | None]


def validate_entry(kind: str, doc: dict[str, Any], entry_key: str | None, calendar_of: CalendarOf) -> Any:
    """The entry ``doc`` describes, validated (``directory.invalid_entry``); its id must be ``entry_key``."""
    if kind not in MODELS:
        raise DirectoryError("directory.unknown_kind", f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    try:
        entry = MODELS[kind].model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
        raise DirectoryError("directory.invalid_entry", f"invalid {kind} entry: {problems}") from None
    if entry_key is not None and entry_id(kind, entry) != entry_key:
        raise DirectoryError(
            "directory.id_mismatch",
            f"the entry's id {entry_id(kind, entry)!r} is not the one addressed ({entry_key!r})",
        )
    if isinstance(entry, Team):
        try:
            calendar_of(entry)
        except Exception as exc:  # noqa: BLE001 - whatever the spec got wrong, it is the caller's input
            raise DirectoryError("directory.bad_calendar", f"team {entry.id!r}: {exc}") from None
    zone = getattr(entry, "time_zone", None)
    if zone is not None and not known_time_zone(zone):
        raise DirectoryError(
            "directory.bad_time_zone", f"{kind} {entry_id(kind, entry)!r}: unknown IANA time zone {zone!r}"
        )
    return entry


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def known_time_zone(name: str) -> bool:
    """Whether ``name`` is a zone of the installed tzdata (not merely a readable file)."""
    return name in _time_zones()


class DirectoryStore:
    def __init__(self, pool: asyncpg.Pool, calendar_of: CalendarOf) -> None:
        """``calendar_of`` resolves a team's working calendar (``workflows.directory_files.team_calendar``)."""
        self._pool = pool
        self._calendar_of = calendar_of

    # ------------------------------------------------------------------------------ writes

    async def write(self, changes: Sequence[tuple[str, str, Any | None]], *, actor: Actor, reason: str = "") -> int:
        """Apply ``(kind, id, entry or None to remove)`` changes in one transaction; the log's rows are
        written with ``actor``. Returns how many entries changed (an unchanged entry writes nothing)."""
        changed = 0
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            for kind, key, entry in changes:
                current = await conn.fetchval(
                    "SELECT doc FROM directory_entries WHERE kind = $1 AND id = $2", kind, key
                )
                doc = entry.model_dump(mode="json", exclude_none=True) if entry is not None else None
                if current is None and doc is None:
                    raise DirectoryError("directory.unknown_entry", f"{kind} {key!r} is not in the directory")
                if current is not None and doc is not None and json.loads(current) == doc:
                    continue
                seq = await conn.fetchval(
                    "INSERT INTO directory_changes (actor_id, actor_role, kind, id, doc, reason) "
                    "VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING seq",
                    actor.id,
                    actor.role.value,
                    kind,
                    key,
                    json.dumps(doc) if doc is not None else None,
                    reason,
                )
                if doc is None:
                    await conn.execute("DELETE FROM directory_entries WHERE kind = $1 AND id = $2", kind, key)
                else:
                    await conn.execute(
                        "INSERT INTO directory_entries (kind, id, doc, changed_seq) VALUES ($1, $2, $3::jsonb, $4) "
                        "ON CONFLICT (kind, id) DO UPDATE SET doc = EXCLUDED.doc, changed_seq = EXCLUDED.changed_seq",
                        kind,
                        key,
                        json.dumps(doc),
                        seq,
                    )
                changed += 1
            await _check_references(conn)
        return changed

    async def put(self, kind: str, key: str, doc: dict[str, Any], *, actor: Actor, reason: str = "") -> Any:
        entry = validate_entry(kind, doc, key, self._calendar_of)
        await self.write([(kind, key, entry)], actor=actor, reason=reason)
        return entry

    async def remove(self, kind: str, key: str, *, actor: Actor, reason: str = "") -> None:
        if kind not in MODELS:
            raise DirectoryError("directory.unknown_kind", f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        await self.write([(kind, key, None)], actor=actor, reason=reason)

    # ------------------------------------------------------------------------------ reads

    async def people_ids(self) -> set[str]:
        async with self._pool.acquire() as conn:
            return {r["id"] for r in await conn.fetch("SELECT id FROM directory_entries WHERE kind = 'people'")}

    async def get(self, kind: str, key: str, as_of: datetime | None = None) -> dict[str, Any] | None:
        found = await self.entries(kind, as_of, key=key)
        return found[0] if found else None

    async def entries(
        self, kind: str, as_of: datetime | None = None, *, key: str | None = None
    ) -> list[dict[str, Any]]:
        """The entries of ``kind`` now, or as they stood at ``as_of`` (folded from the log), by id."""
        async with self._pool.acquire() as conn:
            if as_of is None:
                rows = await conn.fetch(
                    "SELECT doc FROM directory_entries WHERE kind = $1 AND ($2::text IS NULL OR id = $2) ORDER BY id",
                    kind,
                    key,
                )
            else:
                rows = await conn.fetch(
                    "SELECT doc FROM (SELECT DISTINCT ON (id) id, doc FROM directory_changes "
                    "WHERE kind = $1 AND ($2::text IS NULL OR id = $2) AND recorded_at <= $3 ORDER BY id, seq DESC) d "
                    "WHERE doc IS NOT NULL ORDER BY id",
                    kind,
                    key,
                    as_of,
                )
        return [json.loads(r["doc"]) for r in rows]

    async def changes(
        self, *, kind: str | None = None, key: str | None = None, after: int = 0, limit: int = 500
    ) -> list[dict[str, Any]]:
        """The log, oldest first: who changed which entry when, and what it became (None: removed)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT seq, recorded_at, actor_id, actor_role, kind, id, doc, reason FROM directory_changes "
                "WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR id = $2) AND seq > $3 "
                "ORDER BY seq LIMIT $4",
                kind,
                key,
                after,
                limit,
            )
        return [dict(r) | {"doc": json.loads(r["doc"]) if r["doc"] is not None else None} for r in rows]

    # ------------------------------------------------------------------------------ lookups for the workflow

    async def account(self, customer_id: str) -> Account | None:
        doc = await self.get("accounts", customer_id)
        return Account.model_validate(doc) if doc is not None else None

    async def team_candidates(self, team_id: str, now: datetime) -> TeamCandidates:
        """The team's members as routing sees them at ``now``: active cases (across teams), whether the
        team's calendar has them at work, when a case of this team was last routed to them, on-call rank."""
        doc = await self.get("teams", team_id)
        if doc is None:
            return TeamCandidates(team=team_id, known=False)
        team = Team.model_validate(doc)
        zones = {p["id"]: p.get("time_zone") for p in await self._docs("people", team.members)}
        working = {person: self._working(team, zones.get(person), now) for person in team.members}
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT owner, count(*) FILTER (WHERE status = ANY($2::text[])) AS active, "
                "max(opened_at) FILTER (WHERE team = $3) AS last_routed_at "
                "FROM case_list WHERE owner = ANY($1::text[]) GROUP BY owner",
                team.members,
                _ACTIVE,
                team_id,
            )
        load = {r["owner"]: r for r in rows}
        return TeamCandidates(
            team=team_id,
            known=True,
            candidates=[
                RouteCandidate(
                    person=person,
                    active_cases=load[person]["active"] if person in load else 0,
                    working_now=working[person],
                    last_routed_at=load[person]["last_routed_at"] if person in load else None,
                    on_call_rank=team.on_call.index(person) if person in team.on_call else None,
                )
                for person in team.members
            ],
        )

    async def _docs(self, kind: str, ids: list[str]) -> list[dict[str, Any]]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT doc FROM directory_entries WHERE kind = $1 AND id = ANY($2::text[])", kind, ids
            )
        return [json.loads(r["doc"]) for r in rows]

    async def is_working(self, person: str, team_id: str | None, now: datetime) -> bool | None:
        """Whether ``person`` is at work at ``now`` by ``team_id``'s hours in their time zone (None: the
        directory does not know them; True: no team or a team without hours)."""
        found = await self._docs("people", [person])
        if not found:
            return None
        doc = await self.get("teams", team_id) if team_id else None
        if doc is None:
            return True
        return self._working(Team.model_validate(doc), found[0].get("time_zone"), now)

    def _working(self, team: Team, time_zone: str | None, now: datetime) -> bool:
        """Whether the team's working hours hold ``now`` where the person is (their time zone when the
        directory knows it, else the team calendar's); a team without a calendar always works."""
        if team.calendar is None:
            return True
        spec = team.calendar if time_zone is None else {**team.calendar, "time_zone": time_zone}
        for candidate in (spec, team.calendar):  # a person's zone tzdata does not know: the team's own
            try:
                calendar = self._calendar_of(team.model_copy(update={"calendar": candidate}))
                return calendar.is_working(now) if calendar is not None else True
            except Exception:  # noqa: BLE001, S112 - a broken calendar must not stall routing: the next one
                continue
        return True  # no usable calendar: the member counts as working rather than routing stalling

    async def resolve(
        self,
        specs: Iterable[str],
        *,
        team: str | None,
        owner: str | None,
        category: Category,
        customer_id: str | None,
    ) -> dict[str, list[Responder]]:
        """Each responder spec (see ``workflows.core.policy``) resolved to people from the directory now."""
        specs = list(dict.fromkeys(specs))
        snapshot = await DirectorySnapshot.load(
            self._pool, team=team, category=category, customer_id=customer_id, specs=specs
        )
        return {spec: snapshot.people(spec, team=team, owner=owner, category=category) for spec in specs}

    async def resolver(self) -> DirectorySnapshot:
        """The whole directory in memory, to check a policy against it (publication)."""
        return await DirectorySnapshot.load(self._pool, team=None, category=None, customer_id=None, specs=None)


class DirectorySnapshot:
    """Directory entries loaded at one moment, answering responder specs."""

    def __init__(self, entries: dict[tuple[str, str], dict[str, Any]], customer_id: str | None) -> None:
        self._entries = entries
        self._customer_id = customer_id

    @classmethod
    async def load(
        cls,
        db: asyncpg.Pool | asyncpg.Connection,
        *,
        team: str | None,
        category: Category | None,
        customer_id: str | None,
        specs: list[str] | None,
    ) -> DirectorySnapshot:
        """The directory's people and the entries a case needs (``specs`` None: every entry), read through
        ``db`` (a pool, or a connection in the caller's transaction)."""
        if specs is None:
            rows = await db.fetch("SELECT kind, id, doc FROM directory_entries")
        else:
            wanted = [
                ("teams", team or ""),
                ("directors", category.value if category else ""),
                ("accounts", customer_id or ""),
            ]
            wanted += [("teams", s.removeprefix("team:")) for s in specs if s.startswith("team:")]
            rows = await db.fetch(
                "SELECT kind, id, doc FROM directory_entries WHERE (kind, id) IN "
                "(SELECT * FROM unnest($1::text[], $2::text[])) OR kind = 'people'",
                [k for k, _ in wanted],
                [i for _, i in wanted],
            )
        return cls({(r["kind"], r["id"]): json.loads(r["doc"]) for r in rows}, customer_id)

    def person(self, person_id: str) -> Person | None:
        doc = self._entries.get(("people", person_id))
        return Person.model_validate(doc) if doc else None

    def _person(self, person_id: str, via: str) -> Responder:
        doc = self._entries.get(("people", person_id))
        return Responder(id=person_id, name=doc["name"] if doc else None, via=via)

    def team(self, team_id: str | None) -> Team | None:
        doc = self._entries.get(("teams", team_id or ""))
        return Team.model_validate(doc) if doc else None

    def people(self, spec: str, *, team: str | None, owner: str | None, category: Category | None) -> list[Responder]:
        ids: list[str] = []
        if spec == "owner":
            ids = [owner] if owner else []
        elif spec == "case_team" or spec.startswith("team:"):
            found = self.team(team if spec == "case_team" else spec.removeprefix("team:"))
            ids = (found.on_call or found.members) if found else []
        elif spec.startswith("role:"):
            found = self.team(team)
            holder = getattr(found, spec.removeprefix("role:"), None) if found else None
            ids = [holder] if holder else []
        elif spec == "category:director":
            director = self._entries.get(("directors", category.value if category else ""))
            if director:
                ids = [director["person"]]
            else:
                found = self.team(team)
                ids = [found.director] if found and found.director else []
        elif spec.startswith("account:"):
            account = self._entries.get(("accounts", self._customer_id or ""))
            holder = account.get(spec.removeprefix("account:")) if account else None
            ids = [holder] if holder else []
        elif spec.startswith("person:"):
            person = spec.removeprefix("person:")
            ids = [person] if ("people", person) in self._entries else []
        return [self._person(p, spec) for p in ids]

    def resolves(self, spec: str, team: str | None, category: Category) -> list[str]:
        """For a policy check: the people ``spec`` names for a case of ``team`` and ``category``."""
        return [r.id for r in self.people(spec, team=team, owner=None, category=category)]


async def policy_problems(pool: asyncpg.Pool, policy: Policy) -> list[tuple[str, str]]:
    """(rule, message) for each way ``policy`` would fail people with the directory as it is now: a routing
    rule naming a team the directory lacks (``policy.unknown_team``), a level that would reach nobody for
    some team and category (``policy.level_without_responders``)."""
    snapshot = await DirectorySnapshot.load(pool, team=None, category=None, customer_id=None, specs=None)
    problems: list[tuple[str, str]] = []
    if policy.routing is not None:
        for team in policy.routing.teams():
            if snapshot.team(team) is None:
                problems.append(("policy.unknown_team", f"routing sends cases to team {team!r}, not in the directory"))
    for message in unresolvable_levels(policy, snapshot.resolves):
        problems.append(("policy.level_without_responders", message))
    return problems


async def _check_references(conn: asyncpg.Connection) -> None:
    """Refuse (whole) a write that leaves an entry naming a person the directory does not hold."""
    people = {r["id"] for r in await conn.fetch("SELECT id FROM directory_entries WHERE kind = 'people'")}
    for row in await conn.fetch("SELECT kind, id, doc FROM directory_entries WHERE kind <> 'people'"):
        entry = MODELS[row["kind"]].model_validate(json.loads(row["doc"]))
        missing = [p for p in people_named(entry) if p not in people]
        if missing:
            raise DirectoryError(
                "directory.unknown_person",
                f"{row['kind']} {row['id']!r} names {', '.join(repr(p) for p in missing)}, not in the directory "
                f"(a person still named by an entry cannot be removed)",
            )


__all__ = ["Account", "DirectoryError", "DirectoryStore", "Person", "Team", "validate_entry"]
