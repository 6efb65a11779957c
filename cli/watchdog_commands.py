"""``escalations watchdog``: deadlines past due with no breach stored (``projections/watchdog.py``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import Any

from cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_VERIFY_FAILED


def add_watchdog_parser(sub: Any) -> None:
    parser = sub.add_parser("watchdog", help="deadlines overdue with no breach stored (exit 1 if any)")
    parser.add_argument("--margin", help="how far past due counts as lost (default ESCALATIONS_WATCHDOG_MARGIN or 60s)")
    parser.add_argument("--json", action="store_true", help="one JSON object per overdue deadline")


async def run_watchdog(
    args: argparse.Namespace, pool_factory: Callable[[], Awaitable[Any]], fail: Callable[[int, str], int]
) -> int:
    from projections.watchdog import margin_from_env, overdue_deadlines, parse_margin

    try:
        margin = parse_margin(args.margin, "--margin") if args.margin else margin_from_env()
    except ValueError as exc:
        return fail(EXIT_BAD_INPUT, str(exc))
    pool = await pool_factory()
    try:
        overdue = await overdue_deadlines(pool, margin)
    finally:
        await pool.close()
    for deadline in overdue:
        if args.json:
            print(
                json.dumps(
                    {
                        "case_id": deadline.case_id,
                        "kind": deadline.kind,
                        "level": deadline.level,
                        "due_at": deadline.due_at.isoformat(),
                        "overdue_seconds": round(deadline.overdue.total_seconds(), 1),
                    }
                )
            )
        else:
            print(deadline.describe())
    if not overdue and not args.json:
        print(f"no deadline overdue by more than {int(margin.total_seconds())} s")
    return EXIT_VERIFY_FAILED if overdue else EXIT_OK
