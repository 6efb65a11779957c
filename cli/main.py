"""``escalations``: run the stack and drive cases from the shell.

    escalations up                      dev stack: Temporal dev server + embedded PostgreSQL + worker
    escalations worker                  the worker alone (DATABASE_URL and TEMPORAL_ADDRESS)
    escalations migrate                 apply database migrations (DATABASE_URL)
    escalations open --customer-id ...  open a case; prints its state
    escalations show CASE               the live state of a case
    escalations act CASE COMMAND k=v .. run one command (acknowledge, assign owner=bob, ...)

Exit status: 0 done, 2 bad input, 3 refused by a rule, 4 not found / unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError

EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNAVAILABLE = 2, 3, 4
DEFAULT_TEMPORAL_ADDRESS = "127.0.0.1:7233"


def _actor(value: str) -> dict[str, str]:
    role, _, ident = value.partition(":")
    if not ident:
        raise argparse.ArgumentTypeError("--as takes ROLE:ID, for example agent:alice")
    return {"role": role, "id": ident}


def _parse_pairs(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON is used as JSON (numbers, booleans, objects)."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(_fail(EXIT_BAD_INPUT, f"expected key=value, got {pair!r}"))
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if isinstance(value, float | int) and key in {"text", "reason", "note", "comment", "summary", "owner"}:
            value = raw
        fields[key.replace("-", "_")] = value
    return fields


def _fail(code: int, message: str) -> int:
    print(f"escalations: {message}", file=sys.stderr)
    return code


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


async def _client():
    from worker import connect_client

    address = os.environ.get("TEMPORAL_ADDRESS", DEFAULT_TEMPORAL_ADDRESS)
    try:
        return await connect_client(address, os.environ.get("TEMPORAL_NAMESPACE", "default"))
    except Exception as exc:  # noqa: BLE001 - reported as "unreachable", with the cause
        raise SystemExit(_fail(EXIT_UNAVAILABLE, f"cannot reach Temporal at {address}: {exc}")) from None


def _summary(state: Any) -> dict[str, Any]:
    clocks = {k.value: c.due_at.isoformat() for k, c in state.clocks.items()}
    return {
        "case_id": state.case_id,
        "status": state.status.value,
        "priority": state.priority.value,
        "level": state.level,
        "owner": state.owner,
        "version": state.version,
        "paused": state.paused.reason.value if state.paused else None,
        "deadlines": clocks,
        "breaches": {k.value: v for k, v in state.breaches.items()},
        "policy": f"{state.policy_label} ({state.policy_hash[:12]})",
    }


async def _open(args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowQueryFailedError

    from workflows.client import case_state, open_case
    from workflows.commands import OpenEscalation

    fields = {
        "actor": args.actor,
        "idempotency_key": args.idempotency_key or f"cli-open-{uuid.uuid4().hex}",
        "case_id": args.case_id or f"case-{uuid.uuid4().hex[:12]}",
        "customer": {"id": args.customer_id, "name": args.customer_name, "tier": args.tier, "annual_value": args.value},
        "category": args.category,
        "lifecycle_stage": args.stage,
        "severity": args.severity,
        "title": args.title,
        "description": args.description,
        "source": args.source,
    }
    if args.priority:
        fields.update(priority_override=args.priority, override_reason=args.override_reason)
    try:
        command = OpenEscalation.model_validate(fields)
    except ValidationError as exc:
        return _fail(EXIT_BAD_INPUT, f"invalid case: {exc}")
    client = await _client()
    await open_case(client, command)
    # The opening event is stored by the workflow's first task: wait for it.
    for _ in range(100):
        try:
            state = await case_state(client, command.case_id)
            break
        except WorkflowQueryFailedError:
            await asyncio.sleep(0.1)
    else:
        return _fail(EXIT_UNAVAILABLE, f"case {command.case_id} started but is not stored yet; is a worker running?")
    _print_json(_summary(state))
    return 0


async def _show(args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    from workflows.client import case_state

    client = await _client()
    try:
        state = await case_state(client, args.case_id)
    except RPCError as exc:
        return _fail(EXIT_UNAVAILABLE, f"case {args.case_id}: {exc.message}")
    _print_json(state.model_dump(mode="json", exclude={"policy"}) if args.full else _summary(state))
    return 0


async def _act(args: argparse.Namespace) -> int:
    from temporalio.service import RPCError

    from workflows.client import CommandRefused, send_command
    from workflows.commands import COMMAND_CLASSES

    name = args.command.replace("-", "_")
    name = {"notes": "add_note", "note": "add_note"}.get(name, name)
    cls = COMMAND_CLASSES.get(name)
    if cls is None or name == "open":
        known = ", ".join(sorted(n for n in COMMAND_CLASSES if n != "open"))
        return _fail(EXIT_BAD_INPUT, f"unknown command {args.command!r}; known: {known}")
    fields = _parse_pairs(args.fields)
    if args.json:
        try:
            fields.update(json.loads(args.json))
        except json.JSONDecodeError as exc:
            return _fail(EXIT_BAD_INPUT, f"--json is not JSON: {exc}")
    fields.update(actor=args.actor, idempotency_key=args.idempotency_key or f"cli-{uuid.uuid4().hex}")
    try:
        command = cls.model_validate(fields)
    except ValidationError as exc:
        return _fail(EXIT_BAD_INPUT, f"invalid {name}: {exc}")
    client = await _client()
    try:
        result = await send_command(client, args.case_id, command)
    except CommandRefused as exc:
        return _fail(EXIT_REFUSED, str(exc))
    except RPCError as exc:
        return _fail(EXIT_UNAVAILABLE, f"case {args.case_id}: {exc.message}")
    _print_json(
        {
            "duplicate": result.duplicate,
            "events": [{"version": e.version, "type": e.type} for e in result.events],
            "state": _summary(result.state),
        }
    )
    return 0


async def _migrate(_: argparse.Namespace) -> int:
    from events.database import create_pool

    url = os.environ.get("DATABASE_URL")
    if not url:
        return _fail(EXIT_BAD_INPUT, "DATABASE_URL is not set")
    pool = await create_pool(url)
    await pool.close()
    print("migrations applied")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="escalations", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="subcommand", required=True)
    up = sub.add_parser("up", help="run the dev stack (Temporal dev server, embedded PostgreSQL, worker)")
    up.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ESCALATIONS_DATA_DIR", ".data")))
    sub.add_parser("worker", help="run the worker (needs DATABASE_URL and TEMPORAL_ADDRESS)")
    sub.add_parser("migrate", help="apply database migrations (needs DATABASE_URL)")

    def actor_options(p: argparse.ArgumentParser, default: str) -> None:
        p.add_argument("--as", dest="actor", type=_actor, default=_actor(default), help=f"ROLE:ID (default {default})")
        p.add_argument("--idempotency-key", help="resend with the same key to make a retry safe")

    opening = sub.add_parser("open", help="open a case")
    actor_options(opening, "agent:cli")
    opening.add_argument("--case-id")
    opening.add_argument("--customer-id", required=True)
    opening.add_argument("--customer-name", required=True)
    opening.add_argument("--tier", required=True, help="strategic | enterprise | standard")
    opening.add_argument("--value", default="0", help="annual value of the account")
    opening.add_argument("--severity", required=True, help="sev1..sev4")
    opening.add_argument("--category", default="technical")
    opening.add_argument("--stage", default="ongoing_support")
    opening.add_argument("--source", default="employee", help="customer | employee | service | early_warning")
    opening.add_argument("--title", required=True)
    opening.add_argument("--description", required=True)
    opening.add_argument("--priority", help="override the matrix (needs --override-reason)")
    opening.add_argument("--override-reason")

    show = sub.add_parser("show", help="the live state of a case")
    show.add_argument("case_id")
    show.add_argument("--full", action="store_true", help="every field, not the summary")

    act = sub.add_parser("act", help="run one command on a case")
    actor_options(act, "agent:cli")
    act.add_argument("case_id")
    act.add_argument("command", help="acknowledge, assign, note, escalate, pause, resume, ... (hyphens or underscores)")
    act.add_argument("fields", nargs="*", help="key=value fields of the command")
    act.add_argument("--json", help="fields as one JSON object")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from worker import Settings, configure_logging

    configure_logging()
    if args.subcommand == "up":
        from cli.devstack import run_up

        status = _run(run_up(Settings.from_env(), args.data_dir))
    elif args.subcommand == "worker":
        from worker import run_worker

        status = _run(run_worker(Settings.from_env()))
    else:
        handler = {"open": _open, "show": _show, "act": _act, "migrate": _migrate}[args.subcommand]
        status = _run(handler(args))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300: never let interpreter teardown change the status


def _run(coro: Any) -> int:
    try:
        return asyncio.run(coro) or 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        return 130
