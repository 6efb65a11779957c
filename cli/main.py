"""``escalations``: run the stack and drive cases from the shell.

    escalations up                      dev stack: Temporal dev server + embedded PostgreSQL + worker
    escalations worker                  the worker alone (DATABASE_URL and TEMPORAL_ADDRESS)
    escalations migrate                 apply database migrations (DATABASE_URL)
    escalations open --customer-id ...  open a case; prints its state
    escalations show CASE               the live state of a case
    escalations act CASE COMMAND k=v .. run one command (acknowledge, assign owner=bob, ...)
    escalations project                 projector + webhook delivery
    escalations api [--port 8000]       the HTTP API (OpenAPI at /docs)
    escalations token create --role ROLE --name NAME [--expires-in-days N] | list | revoke NAME | rotate NAME
    escalations rebuild [NAME]          rebuild a read model from event zero, print the diff
    escalations audit CASE [--as-of T] [--format text|jsonl|csv|state]
    escalations verify [CASE] [--digest FILE] / escalations digest [-o FILE]
    escalations metrics / escalations systemic
    escalations policy list | show [HASH] | publish FILE --author A --reason R
    escalations policy apply HASH --mode keep|rebase|retroactive (--case ID ... | --all-open) --reason R
    escalations resurrect               a workflow for every open case Temporal lost (its database wiped)
    escalations watchdog [--margin 60s] deadlines overdue with no breach stored (exit 1 if any)

Exit status: 0 done, 1 verification failed, 2 bad input, 3 refused by a rule, 4 not found / unreachable.
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

from cli.common import (
    EXIT_BAD_INPUT,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_VERIFY_FAILED,
    _client,
    _fail,
    actor_options,
)
from cli.delivery_commands import add_deliveries_parser, run_deliveries
from cli.directory_commands import add_directory_parser, run_directory
from cli.erasure_commands import add_erasure_parsers, run_erasure
from cli.log_commands import add_log_parsers, run_log
from cli.policy_commands import add_policy_parser, run_policy
from cli.resurrect_commands import add_resurrect_parser, run_resurrect
from cli.watchdog_commands import add_watchdog_parser, run_watchdog


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


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _summary(state: Any) -> dict[str, Any]:
    clocks = {d.kind.value: d.due_at.isoformat() for d in state.deadlines}
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
    from temporalio.client import WorkflowUpdateFailedError

    from workflows.client import CommandRefused, open_case_and_wait
    from workflows.core.commands import OpenEscalation
    from workflows.escalation_workflow import TASK_QUEUE

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
    try:
        state = await open_case_and_wait(
            client, command, task_queue=os.environ.get("ESCALATIONS_TASK_QUEUE", TASK_QUEUE)
        )
    except WorkflowUpdateFailedError as exc:
        return _fail(EXIT_REFUSED, f"case {command.case_id} was not opened: {exc.cause}")
    except CommandRefused as exc:
        return _fail(EXIT_REFUSED, f"case {command.case_id} was not opened: {exc}")
    _print_json(_summary(state))
    return 0


async def _show(args: argparse.Namespace) -> int:
    """The case as the event store holds it (it keeps answering after its workflow's history is gone)."""
    from events.store import CorruptEvent, EventStore
    from projections import queries

    pool = await _pool()
    try:
        view = await queries.read_case(EventStore(pool), args.case_id)
    except queries.CaseNotFound:
        return _fail(EXIT_UNAVAILABLE, f"no case {args.case_id!r} in the event store")
    except CorruptEvent as exc:
        return _fail(EXIT_VERIFY_FAILED, str(exc))
    finally:
        await pool.close()
    _print_json(view.model_dump(mode="json") if args.full else _summary(view))
    return 0


async def _act(args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError, RPCStatusCode

    from workflows.client import CommandRefused, send_command
    from workflows.core.commands import COMMAND_CLASSES

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
    except WorkflowUpdateFailedError as exc:
        return _fail(EXIT_REFUSED, f"case {args.case_id}: the command failed: {exc.cause}")
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return _fail(EXIT_UNAVAILABLE, f"case {args.case_id}: no running case (unknown, or finished)")
        return _fail(EXIT_UNAVAILABLE, f"case {args.case_id}: {exc.message}")
    _print_json(
        {
            "duplicate": result.duplicate,
            "events": [{"version": e.version, "type": e.type} for e in result.events],
            "state": _summary(result.state),
        }
    )
    return 0


async def _pool(role: str | None = None, patience: float = 0.0):
    from events.database import create_pool

    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit(_fail(EXIT_BAD_INPUT, "DATABASE_URL is not set"))
    try:
        return await create_pool(url, max_size=4, role=role, patience=patience)
    except (OSError, asyncpg_errors()) as exc:
        raise SystemExit(_fail(EXIT_UNAVAILABLE, f"cannot reach PostgreSQL: {exc}")) from None


def asyncpg_errors() -> type[Exception]:
    import asyncpg

    return asyncpg.PostgresError


async def _project(_: argparse.Namespace) -> int:
    from events.database import SERVICE_PATIENCE
    from events.log_keys import SigningKeyError, signer_from_env
    from observability import metrics
    from projections.ack_links import AckLinks
    from projections.service import run_projector
    from worker import Settings

    channels = channels_from_env()
    try:
        signer = signer_from_env()
    except SigningKeyError as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    settings = Settings.from_env()
    if settings.metrics_address:
        metrics.serve_once(settings.metrics_address)
    pool = await _pool(role=settings.db_role or None, patience=SERVICE_PATIENCE)
    try:
        await run_projector(pool, channels, links=AckLinks.from_env(channels.base_url), signer=signer)
    finally:
        await pool.close()
    return 0


def channels_from_env() -> Any:
    """The notification channels: ``ESCALATIONS_NOTIFY_CONFIG`` (a TOML file: [smtp], [chat.NAME],
    [webhooks.NAME], base_url), plus ``ESCALATIONS_WEBHOOKS`` (a JSON object of webhook names to URLs)."""
    from projections.channels import ChannelsConfig

    raw = os.environ.get("ESCALATIONS_WEBHOOKS", "{}")
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise SystemExit(_fail(EXIT_BAD_INPUT, f"ESCALATIONS_WEBHOOKS is not JSON: {exc}")) from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise SystemExit(_fail(EXIT_BAD_INPUT, "ESCALATIONS_WEBHOOKS must map target names to URL strings"))
    try:
        return ChannelsConfig.from_env()
    except ValueError as exc:
        raise SystemExit(_fail(EXIT_BAD_INPUT, str(exc))) from None


async def _rebuild(args: argparse.Namespace) -> int:
    from projections import PROJECTIONS
    from projections.rebuild import rebuild

    names = [args.name] if args.name else [n for n, p in PROJECTIONS.items() if p.rebuildable]
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown:
        return _fail(EXIT_BAD_INPUT, f"unknown projection {unknown[0]!r}; known: {', '.join(PROJECTIONS)}")
    pool = await _pool()
    try:
        for name in names:
            try:
                diffs = await rebuild(pool, PROJECTIONS[name], swap=True)
            except ValueError as exc:
                return _fail(EXIT_BAD_INPUT, str(exc))
            print(f"rebuilt {name}:")
            for diff in diffs:
                print(f"  {diff}")
    finally:
        await pool.close()
    return 0


async def _audit(args: argparse.Namespace) -> int:
    from datetime import datetime

    from events.store import CorruptEvent, EventStore
    from projections.audit import export_csv, export_jsonl, timeline_text
    from workflows.core.events import stream_id_for
    from workflows.core.evolve import fold

    pool = await _pool()
    try:
        store = EventStore(pool)
        rows = await store.read_stored(stream_id_for(args.case_id))
        if args.format == "jsonl" and not args.as_of:
            # The exact stored bytes, unparsed (verifiable with scripts/verify_export.py).
            if not rows:
                return _fail(EXIT_UNAVAILABLE, f"no case {args.case_id!r} in the event store")
            sys.stdout.write(export_jsonl(rows))
            return 0
        try:
            events = await store.read_stream(stream_id_for(args.case_id))
        except CorruptEvent as exc:
            return _fail(EXIT_VERIFY_FAILED, str(exc))
    finally:
        await pool.close()
    if not events:
        return _fail(EXIT_UNAVAILABLE, f"no case {args.case_id!r} in the event store")
    if args.as_of:
        try:
            at = datetime.fromisoformat(args.as_of)
        except ValueError:
            return _fail(EXIT_BAD_INPUT, f"--as-of {args.as_of!r} is not an ISO 8601 instant")
        if at.tzinfo is None:
            return _fail(EXIT_BAD_INPUT, "--as-of needs a time zone (e.g. 2026-11-22T10:00:00Z)")
        events = [e for e in events if e.occurred_at <= at]
        if not events:
            return _fail(EXIT_UNAVAILABLE, f"case {args.case_id} did not exist at {at.isoformat()}")
    if args.format == "jsonl":
        versions = {e.version for e in events}
        sys.stdout.write(export_jsonl([r for r in rows if r.version in versions]))
    elif args.format == "csv":
        sys.stdout.write(export_csv(events))
    elif args.format == "state":
        state = fold(events)
        assert state is not None  # events is not empty
        print(state.model_dump_json(indent=2, exclude={"policy"}))
    else:
        sys.stdout.write(timeline_text(events))
    return 0


async def _verify(args: argparse.Namespace) -> int:
    from events.store import ChainBreak, EventStore
    from projections import queries
    from projections.audit import check_digest, verify_all
    from workflows.core.events import case_id_of, stream_id_for

    pool = await _pool()
    try:
        if args.case_id:
            try:
                verdict = await queries.verify_case(EventStore(pool), args.case_id)
            except queries.CaseNotFound:
                return _fail(EXIT_UNAVAILABLE, f"no case {args.case_id!r} in the event store")
            streams, events = 1, verdict["events"]
            broken = verdict["broken"]
            breaks = (
                []
                if broken is None
                else [ChainBreak(stream_id_for(args.case_id), broken["version"], 0, broken["reason"])]
            )
        else:
            streams, events, breaks = await verify_all(pool)
        problems = [f"case {case_id_of(b.stream_id)} version {b.version}: {b.reason}" for b in breaks]
        if args.digest:
            try:
                saved = json.loads(Path(args.digest).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                return _fail(EXIT_BAD_INPUT, f"cannot read digest {args.digest}: {exc}")
            problems += [f"digest: {p}" for p in await check_digest(pool, saved)]
    finally:
        await pool.close()
    if problems:
        for problem in problems:
            print(f"BROKEN {problem}")
        return 1
    print(
        f"OK: {streams} streams, {events} events, every hash chain verifies"
        + (" and matches the digest" if args.digest else "")
    )
    return 0


async def _digest(args: argparse.Namespace) -> int:
    from projections.audit import make_digest

    pool = await _pool()
    try:
        digest = await make_digest(pool)
    finally:
        await pool.close()
    text = json.dumps(digest, indent=2, sort_keys=True) + "\n"
    if args.output:
        Path(args.output).write_text(text)
        print(f"digest of {len(digest['streams'])} streams written to {args.output}: {digest['digest']}")
    else:
        sys.stdout.write(text)
    return 0


async def _metrics(_: argparse.Namespace) -> int:
    from projections.metrics import compute_metrics

    pool = await _pool()
    try:
        async with pool.acquire() as conn:
            _print_json(await compute_metrics(conn))
    finally:
        await pool.close()
    return 0


async def _systemic(_: argparse.Namespace) -> int:
    from projections import queries

    pool = await _pool()
    try:
        async with pool.acquire() as conn:
            _print_json(await queries.systemic_issues(conn))
    finally:
        await pool.close()
    return 0


async def _api(args: argparse.Namespace) -> int:
    from api.server import serve_api
    from worker import Settings, _stop_on_signals

    print(f"API on http://{args.host}:{args.port} (OpenAPI at /docs)", flush=True)
    await serve_api(Settings.from_env(), args.host, args.port, _stop_on_signals())
    return 0


async def _token(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from api.auth import TOKEN_ROLES, create_token, list_tokens, revoke_token, rotate_token
    from workflows.core.vocabulary import Role

    pool = await _pool()
    try:
        if args.token_command == "list":
            for t in await list_tokens(pool):
                state = (
                    "revoked"
                    if t.revoked_at
                    else "expired"
                    if t.expires_at and t.expires_at <= datetime.now(UTC)
                    else "live"
                )
                expires = t.expires_at.isoformat() if t.expires_at else "never"
                print(f"{t.name:<24} {t.role:<10} {state:<8} created {t.created_at.isoformat()}  expires {expires}")
            return 0
        if args.token_command == "revoke":
            await revoke_token(pool, args.name)
            print(f"revoked the live token of {args.name!r}")
            return 0
        if args.token_command == "rotate":
            print(await rotate_token(pool, args.name))
            print(f"(new token for {args.name!r}; the old one no longer works; shown once)", file=sys.stderr)
            return 0
        try:
            role = Role(args.role)
            if role not in TOKEN_ROLES:
                raise ValueError
        except ValueError:
            return _fail(EXIT_BAD_INPUT, f"--role must be one of {', '.join(r.value for r in TOKEN_ROLES)}")
        expires_at = datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
        token = await create_token(pool, args.name, role, expires_at=expires_at)
    except LookupError as exc:
        return _fail(EXIT_UNAVAILABLE, str(exc).strip("'\""))
    except ValueError as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    finally:
        await pool.close()
    print(token)
    print(f"(token for {args.name!r}, role {role.value}; shown once, only its hash is stored)", file=sys.stderr)
    return 0


async def _policy(args: argparse.Namespace) -> int:
    return await run_policy(args, _pool, _fail)


async def _deliveries(args: argparse.Namespace) -> int:
    return await run_deliveries(args, _pool, _fail)


async def _erasure(args: argparse.Namespace) -> int:
    return await run_erasure(args, _pool, _fail)


async def _resurrect(args: argparse.Namespace) -> int:
    return await run_resurrect(args, _pool, _client)


async def _watchdog(args: argparse.Namespace) -> int:
    return await run_watchdog(args, _pool, _fail)


async def _log(args: argparse.Namespace) -> int:
    return await run_log(args, _pool, _fail)


async def _directory(args: argparse.Namespace) -> int:
    return await run_directory(args, _pool, _fail)


async def _migrate(_: argparse.Namespace) -> int:
    pool = await _pool()
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
    sub.add_parser("project", help="run the projector and webhook delivery (needs DATABASE_URL)")
    api = sub.add_parser("api", help="serve the HTTP API (needs DATABASE_URL and TEMPORAL_ADDRESS)")
    api.add_argument("--host", default=os.environ.get("ESCALATIONS_API_HOST", "127.0.0.1"))
    api.add_argument("--port", type=int, default=int(os.environ.get("ESCALATIONS_API_PORT", "8000")))
    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    token_create = token_sub.add_parser("create", help="create a token and print it once")
    token_create.add_argument("--role", required=True, help="agent | manager | executive | auditor | service | admin")
    token_create.add_argument("--name", required=True, help="the identity recorded as the actor of its commands")
    token_create.add_argument("--expires-in-days", type=float, help="the token stops working after this many days")
    token_sub.add_parser("list", help="every token, live and past (never the tokens themselves)")
    token_revoke = token_sub.add_parser("revoke", help="revoke a name's live token at once")
    token_revoke.add_argument("name")
    token_rotate = token_sub.add_parser("rotate", help="replace a name's live token; prints the new one once")
    token_rotate.add_argument("name")
    rebuild = sub.add_parser("rebuild", help="rebuild a read model from event zero and swap it in")
    rebuild.add_argument("name", nargs="?", help="case_list | audit_trail | systemic (default: all rebuildable)")
    audit = sub.add_parser("audit", help="a case's history from the event store")
    audit.add_argument("case_id")
    audit.add_argument("--as-of", help="ISO 8601 instant with zone: the history (or state) up to then")
    audit.add_argument("--format", choices=["text", "jsonl", "csv", "state"], default="text")
    verify = sub.add_parser("verify", help="recompute hash chains (all, or one case); compare with a saved digest")
    verify.add_argument("case_id", nargs="?")
    verify.add_argument("--digest", help="a file written by `escalations digest -o`")
    digest = sub.add_parser("digest", help="head hash of every stream and one digest over them")
    digest.add_argument("-o", "--output", help="write to this file instead of stdout")
    sub.add_parser("metrics", help="operations metrics from the case list")
    sub.add_parser("systemic", help="systemic issues and accounts at risk")

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

    show = sub.add_parser("show", help="a case as the event store holds it (DATABASE_URL)")
    show.add_argument("case_id")
    show.add_argument("--full", action="store_true", help="every field, not the summary")

    add_policy_parser(sub)
    add_directory_parser(sub)
    add_deliveries_parser(sub)
    add_log_parsers(sub)
    add_erasure_parsers(sub)
    add_resurrect_parser(sub)
    add_watchdog_parser(sub)

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

        status = _run(run_up(Settings.from_env(), args.data_dir, channels_from_env()))
    elif args.subcommand == "worker":
        from worker import run_worker

        status = _run(run_worker(Settings.from_env()))
    else:
        handler = {
            "open": _open,
            "show": _show,
            "act": _act,
            "migrate": _migrate,
            "project": _project,
            "api": _api,
            "token": _token,
            "rebuild": _rebuild,
            "audit": _audit,
            "verify": _verify,
            "digest": _digest,
            "metrics": _metrics,
            "systemic": _systemic,
            "policy": _policy,
            "directory": _directory,
            "deliveries": _deliveries,
            "log": _log,
            "export": _log,
            "erase": _erasure,
            "erasures": _erasure,
            "resurrect": _resurrect,
            "watchdog": _watchdog,
        }[args.subcommand]
        status = _run(handler(args))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # sdk-python#300: never let interpreter teardown change the status


def _run(coro: Any) -> int:
    """Run a subcommand: its own exit status, or a one-line reason and the documented status for what
    it did not expect (unreachable services: 4; anything else: 1, with the traceback only when
    ``ESCALATIONS_DEBUG`` is set)."""
    import asyncpg
    from temporalio.service import RPCError

    from events.records import CorruptEvent

    try:
        return asyncio.run(coro) or 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        return 130
    except CorruptEvent as exc:
        return _fail(EXIT_VERIFY_FAILED, str(exc))
    except RPCError as exc:
        return _fail(EXIT_UNAVAILABLE, f"Temporal refused or is unreachable: {exc.message}")
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
        return _fail(EXIT_UNAVAILABLE, f"a service is unreachable: {exc}")
    except Exception as exc:  # noqa: BLE001 - one line for the operator; the traceback on request
        if os.environ.get("ESCALATIONS_DEBUG"):
            raise
        return _fail(1, f"unexpected {type(exc).__name__}: {exc} (set ESCALATIONS_DEBUG=1 for the traceback)")


if __name__ == "__main__":
    main()
