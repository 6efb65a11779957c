"""Reading a directory file (TOML): the adapter between directory files and the pure directory model.

A bad file is refused whole with the line and the rule that refused it (``DirectoryFileError``), so
``escalations directory import`` and ``POST /v1/directory/import`` change nothing on any error. The
format is documented, with a complete example, in docs/directory.md.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from workflows.calendar_source import resolve_calendar
from workflows.core.calendar import BusinessCalendar
from workflows.core.canonical import canonical_json
from workflows.core.directory import Director, DirectoryFile, Team, people_named
from workflows.core.events import Actor


class DirectoryFileError(ValueError):
    """A directory file refused: ``rule`` names the rule, ``line`` the line (1-based) it broke at."""

    def __init__(self, rule: str, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message} (rule {rule})")
        self.rule = rule
        self.line = line
        self.message = message


_TOML_LINE = re.compile(r"at line (\d+)")


def parse_directory_file(text: str, known_people: Iterable[str] = ()) -> DirectoryFile:
    """The directory ``text`` describes, checked whole: TOML syntax, every entry's fields, ids unique per
    kind, team calendars that resolve, and every person an entry names either in the file or among
    ``known_people`` (those the directory already holds)."""
    lines = text.splitlines()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        raise DirectoryFileError("directory.toml_syntax", int(found.group(1)) if found else 1, str(exc)) from None
    try:
        parsed = DirectoryFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DirectoryFileError(
            "directory.invalid_entry", _line_of(lines, first["loc"]), f"{where}: {first['msg']}"
        ) from None
    for kind in ("people", "teams", "accounts"):
        seen: set[str] = set()
        for index, entry in enumerate(getattr(parsed, kind)):
            if entry.id in seen:
                raise DirectoryFileError(
                    "directory.duplicate_id",
                    _line_of(lines, (kind, index, "id")),
                    f"{kind} id {entry.id!r} appears twice",
                )
            seen.add(entry.id)
    for index, team in enumerate(parsed.teams):
        _check_calendar(lines, index, team)
    people = {p.id for p in parsed.people} | set(known_people)
    for kind, index, entry in _indexed(parsed):
        for person in people_named(entry):
            if person not in people:
                field = _field_naming(entry, person)
                loc: tuple[Any, ...] = (
                    ("directors", entry.category.value) if isinstance(entry, Director) else (kind, index, field)
                )
                raise DirectoryFileError(
                    "directory.unknown_person",
                    _line_of(lines, loc),
                    f"{kind} entry names person {person!r}, who is neither in the file nor in the directory",
                )
    return parsed


def resolved_team_calendar(team: Team) -> dict[str, Any] | None:
    """The team's working calendar resolved as a policy's are (None: the team always works)."""
    return resolve_calendar(f"team:{team.id}", team.calendar) if team.calendar is not None else None


@lru_cache(maxsize=256)
def _calendar(spec_json: str, team_id: str) -> BusinessCalendar | None:
    resolved = resolved_team_calendar(Team(id=team_id, name=team_id, calendar=json.loads(spec_json)))
    return BusinessCalendar.model_validate(resolved) if resolved is not None else None


def team_calendar(team: Team) -> BusinessCalendar | None:
    """The team's resolved working calendar (None: always working), resolved once per distinct spec."""
    if team.calendar is None:
        return None
    return _calendar(canonical_json(team.calendar), team.id)


def _check_calendar(lines: list[str], index: int, team: Team) -> None:
    try:
        resolved_team_calendar(team)
    except Exception as exc:  # noqa: BLE001 - whatever the spec got wrong, the file is refused with its line
        raise DirectoryFileError(
            "directory.bad_calendar", _line_of(lines, ("teams", index, "calendar")), str(exc)
        ) from None


def _indexed(parsed: DirectoryFile) -> list[tuple[str, int, Any]]:
    """(kind, index in the file, entry) of every entry that names people."""
    out: list[tuple[str, int, Any]] = [("teams", i, t) for i, t in enumerate(parsed.teams)]
    out += [("accounts", i, a) for i, a in enumerate(parsed.accounts)]
    out += [("directors", i, Director(category=c, person=p)) for i, (c, p) in enumerate(parsed.directors.items())]
    return out


def _field_naming(entry: Any, person: str) -> str:
    for name in ("members", "on_call", "escalation_manager", "director", "executive_sponsor", "account_manager"):
        value = getattr(entry, name, None)
        if value == person or (isinstance(value, list) and person in value):
            return name
    return "id"


def _line_of(lines: list[str], loc: tuple[Any, ...] | list[Any]) -> int:
    """The 1-based line of ``loc`` (kind, index, field... or directors, category): the field's line within
    the index-th ``[[kind]]`` block, else that block's header, else the line naming the kind."""
    if not loc:
        return 1
    kind = str(loc[0])
    if kind == "directors":
        return _key_line(lines, r"^\[\s*directors\s*\]", str(loc[1]) if len(loc) > 1 else None)
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    field = str(loc[2]) if len(loc) > 2 else None
    header = re.compile(rf"^\[\[\s*{re.escape(kind)}\s*\]\]")
    count = -1
    block_start = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if header.match(stripped):
            count += 1
            if count == index:
                block_start = number
                if field is None:
                    return number
            elif block_start is not None:
                break
            continue
        if block_start is not None:
            if stripped.startswith("["):
                break
            if field is not None and re.match(rf"^{re.escape(field)}\s*=", stripped):
                return number
    if block_start is not None:
        return block_start
    for number, line in enumerate(lines, start=1):
        if re.match(rf"^\s*(\[\[?\s*)?{re.escape(kind)}\b", line):
            return number
    return 1


def _key_line(lines: list[str], table: str, key: str | None) -> int:
    inside = False
    start = 1
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if re.match(table, stripped):
            inside, start = True, number
            continue
        if inside and stripped.startswith("["):
            break
        if inside and key is not None and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return start


class _Writer(Protocol):
    async def people_ids(self) -> set[str]: ...

    async def write(self, changes: Sequence[tuple[str, str, Any | None]], *, actor: Actor, reason: str = "") -> int: ...


async def import_directory(store: _Writer, text: str, *, actor: Actor, reason: str) -> dict[str, int]:
    """Check ``text`` whole (``DirectoryFileError`` names the line), then create or replace every entry it
    holds in one transaction, logged with ``actor``. Returns the count per kind and how many changed."""
    parsed = parse_directory_file(text, await store.people_ids())
    entries = parsed.entries()
    changed = await store.write([(kind, key, entry) for kind, key, entry in entries], actor=actor, reason=reason)
    counts = {kind: sum(1 for k, _, _ in entries if k == kind) for kind in ("people", "teams", "accounts", "directors")}
    return counts | {"changed": changed}


EXAMPLE_DIRECTORY = Path(__file__).resolve().parent.parent / "samples" / "directory.toml"
