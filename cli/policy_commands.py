"""``escalations policy list|show|publish|apply|simulate``: policy versions, moving open cases to one,
and shadow runs of a candidate policy over past cases."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED, actor_options


def add_policy_parser(sub: Any) -> None:
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
    simulate = policy_sub.add_parser(
        "simulate", help="replay past cases under a candidate policy (nothing is written) and compare"
    )
    simulate.add_argument("file", type=Path, help="the candidate policy (TOML, or JSON content)")
    simulate.add_argument("--since", type=_instant, help="cases opened at or after (ISO date or instant)")
    simulate.add_argument("--until", type=_instant, help="cases opened before; also the replay's horizon")
    simulate.add_argument("--json", action="store_true", help="the full report as JSON instead of a table")


def _instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


async def run_policy(args: argparse.Namespace, pool_factory: Callable[[], Any], fail: Callable[[int, str], int]) -> int:
    from events import policy_versions
    from workflows.policy_files import PolicyError, load_policy

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
                shown = await (policy_versions.find(pool, args.hash) if args.hash else policy_versions.current(pool))
            except ValueError as exc:
                return fail(EXIT_BAD_INPUT, str(exc))
            if shown is None:
                return fail(EXIT_BAD_INPUT, f"no published version {args.hash or '(none published yet)'}")
            print(json.dumps(shown.content, indent=2, sort_keys=True))
            return EXIT_OK
        if args.policy_command == "publish":
            try:
                policy = load_policy(args.file)
                version = await policy_versions.publish(pool, policy, author=args.author, reason=args.reason)
            except (PolicyError, ValueError) as exc:
                return fail(EXIT_BAD_INPUT, str(exc))
            print(f"published {version.content_hash} {version.label!r}: new cases take it from now on")
            return EXIT_OK
        if args.policy_command == "simulate":
            try:
                candidate = load_policy(args.file)
            except PolicyError as exc:
                return fail(EXIT_BAD_INPUT, str(exc))
            started = time.perf_counter()
            histories = await case_histories(pool, args.since, args.until)
            report = simulation_report(histories, candidate, args.until)
            if args.json:
                print(json.dumps(report, indent=2))
            else:
                print_simulation_table(report, time.perf_counter() - started)
            return EXIT_OK
        return await _apply(args, pool, fail)
    finally:
        await pool.close()


async def _apply(args: argparse.Namespace, pool: Any, fail: Callable[[int, str], int]) -> int:
    from temporalio.service import RPCError

    from cli.common import _client
    from events import policy_versions
    from workflows.client import CommandRefused, send_command
    from workflows.core.commands import ChangePolicy

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
    from projections import queries

    async with pool.acquire() as conn:
        return await queries.active_case_ids(conn, priority=priority, customer_id=customer)


async def case_histories(pool: Any, since: datetime | None, until: datetime | None) -> list[list]:
    """Every case's events, for the cases opened in [since, until)."""
    from events.store import EventStore
    from workflows.core.events import CASE_STREAM_PREFIX

    histories: dict[str, list] = {}
    store = EventStore(pool)
    after = 0
    while batch := await store.read_all(after, limit=20_000):
        for event in batch:
            if event.stream_id.startswith(CASE_STREAM_PREFIX):
                histories.setdefault(event.stream_id, []).append(event)
        after = batch[-1].position
    return [
        events
        for events in histories.values()
        if (since is None or events[0].occurred_at >= since) and (until is None or events[0].occurred_at < until)
    ]


def simulation_report(histories: list[list], policy: Any, horizon: datetime | None) -> dict[str, Any]:
    """Per case (those that would differ) and in total: breaches appearing and disappearing, levels, spans."""
    from workflows.core.simulation import compare

    comparisons = [compare(events, policy, horizon) for events in histories]

    def span(value: Any) -> float | None:
        return value.total_seconds() if value is not None else None

    def mean(values: list[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return sum(present) / len(present) if present else None

    return {
        "policy": {"label": policy.label, "hash": policy.content_hash()},
        "totals": {
            "cases": len(comparisons),
            "cases_that_would_differ": sum(c.changed for c in comparisons),
            "breaches_actual": sum(c.breaches_actual for c in comparisons),
            "breaches_simulated": sum(c.breaches_simulated for c in comparisons),
            "breaches_appearing": sum(len(c.appearing) for c in comparisons),
            "breaches_disappearing": sum(len(c.disappearing) for c in comparisons),
            "cases_reaching_a_higher_level": sum(c.max_level_simulated > c.max_level_actual for c in comparisons),
            "cases_reaching_a_lower_level": sum(c.max_level_simulated < c.max_level_actual for c in comparisons),
            "commands_refused": sum(len(c.refused) for c in comparisons),
            "routes_recorded": sum(c.route_actual is not None for c in comparisons),
            "routes_reproduced": sum(
                c.route_actual is not None and c.route_actual == c.route_simulated for c in comparisons
            ),
            "routes_differing": sum(c.route_actual != c.route_simulated for c in comparisons),
            "mean_acknowledge_within_s": {
                "actual": mean([span(c.acknowledge_within_actual) for c in comparisons]),
                "simulated": mean([span(c.acknowledge_within_simulated) for c in comparisons]),
            },
            "mean_resolve_within_s": {
                "actual": mean([span(c.resolve_within_actual) for c in comparisons]),
                "simulated": mean([span(c.resolve_within_simulated) for c in comparisons]),
            },
        },
        "cases": [
            {
                "case_id": c.case_id,
                "breaches": {"actual": c.breaches_actual, "simulated": c.breaches_simulated},
                "appearing": [{"kind": k.value, "level": lvl, "due_at": d.isoformat()} for k, lvl, d in c.appearing],
                "disappearing": [
                    {"kind": k.value, "level": lvl, "due_at": d.isoformat()} for k, lvl, d in c.disappearing
                ],
                "max_level": {"actual": c.max_level_actual, "simulated": c.max_level_simulated},
                "acknowledge_within_s": {
                    "actual": span(c.acknowledge_within_actual),
                    "simulated": span(c.acknowledge_within_simulated),
                },
                "resolve_within_s": {
                    "actual": span(c.resolve_within_actual),
                    "simulated": span(c.resolve_within_simulated),
                },
                "refused": [{"command": name, "rule": rule} for name, rule in c.refused],
                "route": {"actual": _route(c.route_actual), "simulated": _route(c.route_simulated)},
            }
            for c in comparisons
            if c.changed
        ],
    }


def _route(route: Any) -> dict[str, Any] | None:
    return {"rule": route[0], "team": route[1], "owner": route[2]} if route is not None else None


def print_simulation_table(report: dict[str, Any], seconds: float) -> None:
    totals = report["totals"]
    print(
        f"policy {report['policy']['label']!r} {report['policy']['hash'][:12]}: {totals['cases']} cases in {seconds:.1f}s"
    )
    print(f"{'':<34}{'actual':>12}{'simulated':>12}")
    print(f"{'breaches':<34}{totals['breaches_actual']:>12}{totals['breaches_simulated']:>12}")
    for name in ("mean_acknowledge_within_s", "mean_resolve_within_s"):
        pair = totals[name]
        shown = [f"{v / 60:.1f} min" if v is not None else "-" for v in (pair["actual"], pair["simulated"])]
        print(
            f"{name.removeprefix('mean_').removesuffix('_s').replace('_', ' ') + ' (mean)':<34}{shown[0]:>12}{shown[1]:>12}"
        )
    for name in (
        "cases_that_would_differ",
        "breaches_appearing",
        "breaches_disappearing",
        "cases_reaching_a_higher_level",
        "cases_reaching_a_lower_level",
        "commands_refused",
        "routes_recorded",
        "routes_reproduced",
        "routes_differing",
    ):
        print(f"{name.replace('_', ' '):<34}{totals[name]:>24}")
    if report["cases"]:
        print(f"\n{'case':<28}{'breaches':>14}{'+':>5}{'-':>5}{'max level':>12}  refused")
        for case in report["cases"][:50]:
            b, lvl = case["breaches"], case["max_level"]
            refused = ", ".join(r["rule"] for r in case["refused"])
            print(
                f"{case['case_id'][:27]:<28}{b['actual']:>6} -> {b['simulated']:<5}{len(case['appearing']):>5}"
                f"{len(case['disappearing']):>5}{lvl['actual']:>6} -> {lvl['simulated']:<3}  {refused}"
            )
        if len(report["cases"]) > 50:
            print(f"... and {len(report['cases']) - 50} more (--json lists every case)")
