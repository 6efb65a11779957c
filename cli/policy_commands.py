"""``escalations policy list|show|publish|apply``: policy versions and moving open cases to one."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 2, 3  # as cli.main's exit statuses


def add_policy_parser(sub: Any, actor_options: Callable[[argparse.ArgumentParser, str], None]) -> None:
    policy = sub.add_parser("policy", help="policy versions: list, show, publish, apply to open cases")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    policy_sub.add_parser("list", help="published versions, oldest first (the last is current)")
    show = policy_sub.add_parser("show", help="a version's content (JSON), by hash prefix; default: current")
    show.add_argument("hash", nargs="?")
    publish = policy_sub.add_parser("publish", help="make a policy file the version new cases take")
    publish.add_argument("file", type=Path)
    publish.add_argument("--author", required=True)
    publish.add_argument("--reason", required=True)
    apply = policy_sub.add_parser("apply", help="move open cases to a published version (change_policy)")
    actor_options(apply, "manager:cli")
    apply.add_argument("hash", help="the version (hash prefix, at least 8 characters)")
    apply.add_argument("--mode", required=True, choices=["keep", "rebase", "retroactive"])
    apply.add_argument("--reason", required=True)
    apply.add_argument("--case", dest="cases", action="append", default=[], help="a case id (repeatable)")
    apply.add_argument("--all-open", action="store_true", help="every open case matching the filters below")
    apply.add_argument("--priority", help="only open cases of this priority (with --all-open)")
    apply.add_argument("--customer", help="only open cases of this customer id (with --all-open)")


async def run_policy(args: argparse.Namespace, pool_factory: Callable[[], Any], fail: Callable[[int, str], int]) -> int:
    from events import policy_versions
    from workflows.policy import PolicyError, load_policy

    pool = await pool_factory()
    try:
        if args.policy_command == "list":
            for version in await policy_versions.list_versions(pool):
                print(
                    f"{version.content_hash[:16]}  {version.published_at.isoformat(timespec='seconds')}  "
                    f"{version.author:<16} {version.label!r}: {version.reason}"
                )
            return EXIT_OK
        if args.policy_command == "show":
            try:
                version = await (policy_versions.find(pool, args.hash) if args.hash else policy_versions.current(pool))
            except ValueError as exc:
                return fail(EXIT_BAD_INPUT, str(exc))
            if version is None:
                return fail(EXIT_BAD_INPUT, f"no published version {args.hash or '(none published yet)'}")
            print(json.dumps(version.content, indent=2, sort_keys=True))
            return EXIT_OK
        if args.policy_command == "publish":
            try:
                policy = load_policy(args.file)
                version = await policy_versions.publish(pool, policy, author=args.author, reason=args.reason)
            except (PolicyError, ValueError) as exc:
                return fail(EXIT_BAD_INPUT, str(exc))
            print(f"published {version.content_hash} {version.label!r}: new cases take it from now on")
            return EXIT_OK
        return await _apply(args, pool, fail)
    finally:
        await pool.close()


async def _apply(args: argparse.Namespace, pool: Any, fail: Callable[[int, str], int]) -> int:
    from temporalio.service import RPCError

    from cli.main import _client
    from events import policy_versions
    from workflows.client import CommandRefused, send_command
    from workflows.commands import ChangePolicy

    try:
        version = await policy_versions.find(pool, args.hash)
    except ValueError as exc:
        return fail(EXIT_BAD_INPUT, str(exc))
    if version is None:
        return fail(EXIT_BAD_INPUT, f"no published version {args.hash}")
    cases = list(args.cases)
    if args.all_open:
        cases += await _open_cases(pool, args.priority, args.customer)
    elif args.priority or args.customer:
        return fail(EXIT_BAD_INPUT, "--priority and --customer filter --all-open")
    if not cases:
        return fail(EXIT_BAD_INPUT, "name cases with --case, or --all-open")
    client = await _client()
    batch = args.idempotency_key or f"cli-{uuid.uuid4().hex}"
    refused = 0

    async def one(case_id: str) -> None:
        nonlocal refused
        command = ChangePolicy(
            actor=args.actor,
            idempotency_key=f"{batch}:{case_id}"[:128],
            mode=args.mode,
            policy_hash=version.content_hash,
            policy=version.content,
            reason=args.reason,
        )
        try:
            result = await send_command(client, case_id, command)
        except (CommandRefused, RPCError) as exc:
            refused += 1
            print(json.dumps({"case_id": case_id, "refused": str(exc)}))
            return
        moved = [m.model_dump(mode="json") for e in result.events for m in getattr(e.data, "moved", [])]
        print(json.dumps({"case_id": case_id, "mode": args.mode, "moved": moved, "duplicate": result.duplicate}))

    limit = asyncio.Semaphore(16)

    async def limited(case_id: str) -> None:
        async with limit:
            await one(case_id)

    await asyncio.gather(*(limited(c) for c in cases))
    return EXIT_REFUSED if refused else EXIT_OK


async def _open_cases(pool: Any, priority: str | None, customer: str | None) -> list[str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT case_id FROM case_list WHERE status IN ('open', 'in_progress', 'resolution_proposed') "
            "AND ($1::text IS NULL OR priority = $1) AND ($2::text IS NULL OR customer_id = $2) ORDER BY case_id",
            priority,
            customer,
        )
    return [r["case_id"] for r in rows]
