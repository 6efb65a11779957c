"""``escalations directory import|list|show|remove|changes``: the directory from the shell.

The shell works on the database directly (DATABASE_URL) as an administrator; every change is logged with
the actor given by ``--as`` (default ``admin:cli``). A bad file is refused whole, naming its line and rule.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED, _actor
from events.directory_store import KINDS, DirectoryError, DirectoryStore
from workflows.core.events import Actor
from workflows.core.vocabulary import Role
from workflows.directory_files import DirectoryFileError, import_directory, team_calendar


def add_directory_parser(sub: Any) -> None:
    directory = sub.add_parser("directory", help="people, teams, accounts and directors (DATABASE_URL)")
    directory_sub = directory.add_subparsers(dest="directory_command", required=True)
    load = directory_sub.add_parser("import", help="create or replace every entry of a TOML file (checked whole)")
    load.add_argument("file", type=Path)
    load.add_argument("--reason", default="import")
    listing = directory_sub.add_parser("list", help="the entries of one kind, by id")
    listing.add_argument("kind", choices=KINDS)
    listing.add_argument("--as-of", type=datetime.fromisoformat, help="as they stood at this instant (ISO 8601)")
    show = directory_sub.add_parser("show", help="one entry")
    show.add_argument("kind", choices=KINDS)
    show.add_argument("id")
    show.add_argument("--as-of", type=datetime.fromisoformat, help="as it stood at this instant (ISO 8601)")
    remove = directory_sub.add_parser("remove", help="remove one entry (refused while another names it)")
    remove.add_argument("kind", choices=KINDS)
    remove.add_argument("id")
    remove.add_argument("--reason", default="")
    changes = directory_sub.add_parser("changes", help="the log of changes: when, who, what")
    changes.add_argument("--kind", choices=KINDS)
    changes.add_argument("--id")
    for p in (load, remove):
        p.add_argument(
            "--as", dest="actor", type=_actor, default=_actor("admin:cli"), help="ROLE:ID (default admin:cli)"
        )


async def run_directory(
    args: argparse.Namespace, pool_factory: Callable[[], Any], fail: Callable[[int, str], int]
) -> int:
    raw = getattr(args, "actor", None)
    actor = Actor.model_validate(raw) if raw is not None else None
    if actor is None:
        actor = Actor(id="cli", role=Role.ADMIN)  # reads only: nothing is logged
    elif actor.role != Role.ADMIN:
        return fail(
            EXIT_REFUSED,
            f"role {actor.role.value!r} may not change the directory; allowed: admin (rule permission.directory)",
        )
    pool = await pool_factory()
    store = DirectoryStore(pool, team_calendar)
    try:
        if args.directory_command == "import":
            try:
                text = args.file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                return fail(EXIT_BAD_INPUT, f"cannot read {args.file}: {exc}")
            try:
                counts = await import_directory(store, text, actor=actor, reason=args.reason)
            except DirectoryFileError as exc:
                return fail(EXIT_BAD_INPUT, f"{args.file}: {exc}; nothing was changed")
            except DirectoryError as exc:
                return fail(EXIT_REFUSED, f"{args.file}: {exc}; nothing was changed")
            print(
                f"imported {args.file}: {counts['people']} people, {counts['teams']} teams, {counts['accounts']} accounts, "
                f"{counts['directors']} directors; {counts['changed']} entries changed"
            )
            return EXIT_OK
        if args.directory_command == "list":
            print(json.dumps(await store.entries(args.kind, args.as_of), indent=2, sort_keys=True))
            return EXIT_OK
        if args.directory_command == "show":
            found = await store.get(args.kind, args.id, args.as_of)
            if found is None:
                return fail(EXIT_BAD_INPUT, f"no {args.kind} entry {args.id!r} (rule directory.unknown_entry)")
            print(json.dumps(found, indent=2, sort_keys=True))
            return EXIT_OK
        if args.directory_command == "remove":
            try:
                await store.remove(args.kind, args.id, actor=actor, reason=args.reason)
            except DirectoryError as exc:
                return fail(EXIT_REFUSED, str(exc))
            print(f"removed {args.kind} {args.id}")
            return EXIT_OK
        for change in await store.changes(kind=args.kind, key=args.id, limit=100_000):
            print(json.dumps(change, default=str, sort_keys=True))
        return EXIT_OK
    finally:
        await pool.close()
