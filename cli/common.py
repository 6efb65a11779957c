"""What every ``escalations`` subcommand shares: exit statuses, the actor options, the Temporal client."""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNAVAILABLE = 0, 1, 2, 3, 4
DEFAULT_TEMPORAL_ADDRESS = "127.0.0.1:7233"


def _actor(value: str) -> dict[str, str]:
    role, _, ident = value.partition(":")
    if not ident:
        raise argparse.ArgumentTypeError("--as takes ROLE:ID, for example agent:alice")
    return {"role": role, "id": ident}


def actor_options(p: argparse.ArgumentParser, default: str) -> None:
    """``--as ROLE:ID`` and ``--idempotency-key`` on a subcommand that runs a command."""
    p.add_argument("--as", dest="actor", type=_actor, default=_actor(default), help=f"ROLE:ID (default {default})")
    p.add_argument("--idempotency-key", help="resend with the same key to make a retry safe")


def _fail(code: int, message: str) -> int:
    print(f"escalations: {message}", file=sys.stderr)
    return code


async def _client():
    from worker import connect_client

    address = os.environ.get("TEMPORAL_ADDRESS", DEFAULT_TEMPORAL_ADDRESS)
    try:
        return await connect_client(address, os.environ.get("TEMPORAL_NAMESPACE", "default"))
    except Exception as exc:  # noqa: BLE001 - reported as "unreachable", with the cause
        raise SystemExit(_fail(EXIT_UNAVAILABLE, f"cannot reach Temporal at {address}: {exc}")) from None
