"""``escalations log ...`` and ``escalations export``: the transparency log and case bundles from the shell.

Signing needs the key (``ESCALATIONS_LOG_KEY`` or ``ESCALATIONS_LOG_KEY_FILE``); reading checkpoints and
proofs needs only ``DATABASE_URL``. What these write is checked offline by ``scripts/verify_bundle.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cli.common import EXIT_BAD_INPUT, EXIT_OK, EXIT_VERIFY_FAILED


def add_log_parsers(sub: Any) -> None:
    log = sub.add_parser("log", help="the transparency log: keys, checkpoints, proofs, recomputation")
    log_sub = log.add_subparsers(dest="log_command", required=True)
    keygen = log_sub.add_parser("keygen", help="make a signing key file (and print its public key)")
    keygen.add_argument("-o", "--output", required=True, type=Path, help="the key file to create (mode 600)")
    keygen.add_argument("--name", default=None, help="the log's origin, e.g. escalations.example.com/log")
    log_sub.add_parser("key", help="the configured key's public half, as GET /v1/audit/key gives it")
    log_sub.add_parser("sign", help="extend the log to every stored event and sign a checkpoint now")
    checkpoint = log_sub.add_parser("checkpoint", help="the latest signed checkpoint (or the one at --size)")
    checkpoint.add_argument("--size", type=int)
    checkpoint.add_argument("-o", "--output", type=Path, help="save it to this file (default: print it)")
    consistency = log_sub.add_parser("consistency", help="the proof the latest checkpoint extends size FIRST")
    consistency.add_argument("first", type=int, help="the size of the checkpoint you saved earlier")
    consistency.add_argument("--second", type=int, help="a later signed size (default: the latest)")
    consistency.add_argument("-o", "--output", type=Path, help="save it to this file (default: print it)")
    log_sub.add_parser("recompute", help="rebuild the tree from the events and compare it with the stored log")
    export = sub.add_parser("export", help="a case bundle: its stored events, inclusion proofs, checkpoint, key")
    export.add_argument("case_id")
    export.add_argument("-o", "--output", type=Path, required=True, help="the bundle file to write")
    export.add_argument("--since", type=int, help="also prove the log extends a checkpoint of this size")


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        print(f"saved to {output}", file=sys.stderr)


async def run_log(args: argparse.Namespace, pool_factory: Callable[[], Any], fail: Callable[[int, str], int]) -> int:
    from events import transparency_log
    from events.log_keys import DEFAULT_ORIGIN, SigningKeyError, signer_from_env, write_new_key

    if args.subcommand == "log" and args.log_command == "keygen":
        try:
            made = write_new_key(args.output, args.name or DEFAULT_ORIGIN)
        except FileExistsError:
            return fail(EXIT_BAD_INPUT, f"{args.output} exists; a key is never overwritten (rule log.key_exists)")
        except (SigningKeyError, OSError) as exc:
            return fail(EXIT_BAD_INPUT, str(exc))
        print(made.vkey())
        print(f"(signing key written to {args.output}; publish the line above, keep the file secret)", file=sys.stderr)
        return EXIT_OK
    try:
        signer = signer_from_env()
    except SigningKeyError as exc:
        return fail(EXIT_BAD_INPUT, str(exc))
    needs_key = args.subcommand == "export" or args.log_command in ("key", "sign")
    if needs_key and signer is None:
        return fail(EXIT_BAD_INPUT, "no log key: set ESCALATIONS_LOG_KEY_FILE (rule log.no_key)")
    if args.subcommand == "log" and args.log_command == "key":
        assert signer is not None
        print(signer.vkey())
        return EXIT_OK
    pool = await pool_factory()
    try:
        async with pool.acquire() as conn:
            try:
                return await _run(args, pool, conn, signer, fail)
            except transparency_log.LogError as exc:
                return fail(
                    EXIT_VERIFY_FAILED if exc.rule in ("inconsistent", "missing_node") else EXIT_BAD_INPUT, str(exc)
                )
    finally:
        await pool.close()


async def _run(args: argparse.Namespace, pool: Any, conn: Any, signer: Any, fail: Callable[[int, str], int]) -> int:
    from events import transparency_log

    if args.subcommand == "export":
        bundle = await transparency_log.export_case(pool, args.case_id, signer.vkey(), signer=signer, since=args.since)
        if bundle is None:
            return fail(EXIT_BAD_INPUT, f"no case {args.case_id!r} in the event store")
        _emit(json.dumps(bundle, indent=1) + "\n", args.output)
        return EXIT_OK
    command = args.log_command
    if command == "sign":
        added = await transparency_log.catch_up(conn)
        signed = await transparency_log.sign(conn, signer)
        latest = signed or await transparency_log.latest_checkpoint(conn)
        size = latest.size if latest else 0
        print(f"log extended by {added} leaves; " + ("signed" if signed else "already signed") + f" at size {size}")
        return EXIT_OK
    if command == "checkpoint":
        found = await (
            transparency_log.latest_checkpoint(conn)
            if args.size is None
            else transparency_log.checkpoint_at(conn, args.size)
        )
        if found is None:
            return fail(
                EXIT_BAD_INPUT, "no checkpoint signed " + ("yet" if args.size is None else f"at size {args.size}")
            )
        _emit(found.note, args.output)
        return EXIT_OK
    if command == "consistency":
        document = await transparency_log.consistency_document(conn, args.first, args.second)
        _emit(json.dumps(document, indent=1) + "\n", args.output)
        return EXIT_OK
    report = await transparency_log.recompute(conn)
    print(
        f"events: {report.events}, leaves stored: {report.stored_leaves}, checkpoints: {report.checkpoints}; "
        + ("the stored log agrees with the events" if report.agrees else "DIFFERENCES:")
    )
    for difference in report.differences:
        print(f"  {difference}")
    return EXIT_OK if report.agrees else EXIT_VERIFY_FAILED
