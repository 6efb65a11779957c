"""``escalations deliveries list|redrive``: notification deliveries and dead letters from the shell."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from typing import Any

from cli.common import EXIT_BAD_INPUT, EXIT_OK


def add_deliveries_parser(sub: Any) -> None:
    deliveries = sub.add_parser("deliveries", help="notification deliveries and dead letters (DATABASE_URL)")
    deliveries_sub = deliveries.add_subparsers(dest="deliveries_command", required=True)
    listing = deliveries_sub.add_parser("list", help="deliveries, newest first, each with its attempts")
    listing.add_argument("--status", choices=("pending", "delivered", "dead"))
    listing.add_argument("--limit", type=int, default=200)
    redrive = deliveries_sub.add_parser("redrive", help="queue a dead letter (or every one) again, due now")
    target = redrive.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", help="the delivery id")
    target.add_argument("--all", action="store_true", help="every dead letter")


async def run_deliveries(
    args: argparse.Namespace, pool_factory: Callable[[], Any], fail: Callable[[int, str], int]
) -> int:
    from projections import delivery

    pool = await pool_factory()
    try:
        if args.deliveries_command == "list":
            for row in await delivery.deliveries(pool, status=args.status, limit=args.limit):
                print(json.dumps(row, default=str, sort_keys=True))
            return EXIT_OK
        if not args.all:
            try:
                uuid.UUID(args.id)
            except ValueError:
                return fail(EXIT_BAD_INPUT, f"{args.id!r} is not a delivery id (a UUID)")
        count = await delivery.redrive(pool, None if args.all else args.id)
        if not count and not args.all:
            return fail(EXIT_BAD_INPUT, f"no dead delivery {args.id} (rule delivery.not_dead)")
        print(f"re-driven: {count} dead letter{'s' if count != 1 else ''} queued again")
        return EXIT_OK
    finally:
        await pool.close()
