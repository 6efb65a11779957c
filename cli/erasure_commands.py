"""``escalations erase`` and ``escalations erasures``: crypto-shredding a customer's personal data."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_REFUSED


def _actor(value: str) -> dict[str, str]:
    role, _, ident = value.partition(":")
    if not ident:
        raise argparse.ArgumentTypeError("--as takes ROLE:ID, for example admin:dpo")
    return {"role": role, "id": ident}


def add_erasure_parsers(sub: Any) -> None:
    erase = sub.add_parser("erase", help="erase a customer's personal data (destroys their keys; proofs still hold)")
    erase.add_argument("--customer", required=True, help="the customer id (the data subject)")
    erase.add_argument("--reason", required=True, help="why, e.g. the erasure request's reference")
    erase.add_argument("--as", dest="actor", type=_actor, default=_actor("admin:escalations-cli"), help="ROLE:ID")
    listing = sub.add_parser("erasures", help="every erasure recorded (who, when, why, which cases)")
    listing.add_argument("--customer", help="only this customer's")


async def run_erasure(
    args: argparse.Namespace, pool_factory: Callable[[], Any], fail: Callable[[int, str], int]
) -> int:
    from pydantic import ValidationError

    from projections.erasure import ErasureRefused, erase_subject, erasures
    from workflows.core.events import Actor
    from workflows.core.vocabulary import Role

    pool = await pool_factory()
    try:
        if args.subcommand == "erasures":
            for row in await erasures(pool, args.customer):
                print(json.dumps(row, sort_keys=True))
            return EXIT_OK
        try:
            actor = Actor.model_validate(args.actor)
        except ValidationError as exc:
            return fail(EXIT_BAD_INPUT, f"--as: {exc.errors()[0]['msg']}")
        if actor.role != Role.ADMIN:
            return fail(EXIT_REFUSED, f"role {actor.role.value!r} may not erase personal data (rule permission.erase)")
        try:
            erasure = await erase_subject(pool, args.customer, actor, args.reason)
        except ErasureRefused as exc:
            return fail(EXIT_REFUSED, str(exc))
        print(json.dumps(dataclasses.asdict(erasure), default=str, sort_keys=True))
        return EXIT_OK
    finally:
        await pool.close()
