"""The FastAPI application. ``create_app(services)`` wires it to a pool, a Temporal client and the policy.

Every route answers with JSON, or with ``application/problem+json`` naming the
rule that refused it: 401 no or bad token, 403 role, 404 unknown case, 409 the
case's state, 413 body too large, 422 malformed body, 503 a dependency is down.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api import idempotency
from api.auth import Principal, authenticate
from api.console import install_console
from api.models import BODY_MODELS, COMMAND_ROUTES, CasePage, CommandReply, OpenBody, SignalBody, SignalReply
from api.problems import Problem, not_found, unavailable
from api.services import Services
from api.signals import receive_signal
from projections.audit import export_csv, export_jsonl, make_digest, state_as_of
from projections.audit_trail import describe
from projections.metrics import compute_metrics, compute_trend
from workflows.client import CommandRefused, case_state, open_case_and_wait, send_command
from workflows.core.commands import COMMAND_CLASSES, PERMISSIONS, OpenEscalation
from workflows.core.decide import authorize, available_commands, decide_open
from workflows.core.errors import DomainError
from workflows.core.events import CASE_ID_PATTERN, stream_id_for
from workflows.core.idempotency import KEY_REUSED
from workflows.core.permissions import READ_ROLES
from workflows.core.state import EscalationState, Status
from workflows.core.vocabulary import Priority

MAX_BODY_BYTES = 64 * 1024
ROUTE_OF_COMMAND = {name: segment for segment, name in COMMAND_ROUTES.items()}
CasePath = Annotated[str, Path(pattern=CASE_ID_PATTERN, description="the case id")]
SearchText = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


def create_app(services: Services | Callable[[], Awaitable[Services]]) -> FastAPI:
    """The app; ``services`` may be ready, or a factory run at start-up (closed at shutdown)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        if callable(services):
            built = await services()
            app.state.services = built
            try:
                yield
            finally:
                await built.pool.close()
        else:
            app.state.services = services
            yield

    app = FastAPI(
        title="Escalations API",
        version="1.0",
        description="Open and drive customer escalations; read the audit trail and metrics. "
        "Authenticate with `Authorization: Bearer <token>` (`escalations token create`).",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    _install_body_limit(app)
    _routes(app)
    install_console(app)
    return app


# ---------------------------------------------------------------------------- plumbing


def _services(request: Request) -> Services:
    return request.app.state.services


async def _principal(
    request: Request, authorization: Annotated[str | None, Header(description="Bearer <token>")] = None
) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <token>", rule="auth.missing_token")
    try:
        principal = await authenticate(_services(request).pool, authorization[7:].strip())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise unavailable("PostgreSQL", exc) from None
    if principal is None:
        raise Problem(401, "Unauthorized", "the bearer token is unknown or revoked", rule="auth.bad_token")
    return principal


async def _reader(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if principal.role not in READ_ROLES:
        raise Problem(403, "Forbidden", f"role {principal.role.value!r} may not read", rule="permission.read")
    return principal


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return Problem(422, "Invalid Request", detail, rule="request.invalid", errors=errors).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Raised by the framework itself: an unknown route or method, or a body its
        # JSON parser gave up on (e.g. nesting deeper than the parser's recursion limit).
        rule, detail = _FRAMEWORK_REFUSALS.get(exc.status_code, (f"request.http_{exc.status_code}", str(exc.detail)))
        title = HTTPStatus(exc.status_code).phrase
        return Problem(exc.status_code, title, detail, rule=rule).response(request.url.path)

    @app.exception_handler(RPCError)
    async def temporal_down(request: Request, exc: RPCError) -> JSONResponse:
        return unavailable("Temporal", exc.message).response(request.url.path)

    @app.exception_handler(OSError)
    async def connection_down(request: Request, exc: OSError) -> JSONResponse:
        return unavailable("a dependency", exc).response(request.url.path)

    @app.exception_handler(asyncpg.InterfaceError)
    async def pool_down(request: Request, exc: asyncpg.InterfaceError) -> JSONResponse:
        return unavailable("PostgreSQL", exc).response(request.url.path)


_FRAMEWORK_REFUSALS = {
    400: ("request.unparseable", "the body could not be parsed as JSON (too deeply nested, or not UTF-8)"),
    404: ("route.unknown", "no such route; the API is described at /openapi.json"),
    405: ("request.method_not_allowed", "this route does not take that method; see /openapi.json"),
}


def _install_body_limit(app: FastAPI) -> None:
    @app.middleware("http")
    async def limit(request: Request, call_next):  # noqa: ANN001, ANN202
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return Problem(
                413, "Payload Too Large", f"bodies are limited to {MAX_BODY_BYTES} bytes", rule="request.too_large"
            ).response(request.url.path)
        if request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    return Problem(
                        413,
                        "Payload Too Large",
                        f"bodies are limited to {MAX_BODY_BYTES} bytes",
                        rule="request.too_large",
                    ).response(request.url.path)
            request._body = body  # noqa: SLF001 - starlette re-reads the cached body downstream
        return await call_next(request)


def _json(model: BaseModel | Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = model.model_dump_json() if isinstance(model, BaseModel) else json.dumps(model, default=str)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _idempotent(
    request: Request, principal: Principal, key: str | None, act: Callable[[str], Awaitable[Response]]
) -> Response:
    """Run ``act(command_key)`` once per (caller, Idempotency-Key); replay the stored reply after that."""
    services = _services(request)
    if key is None:
        return await act(_command_key(principal, uuid.uuid4().hex))
    idempotency.check_key(key)
    request_fingerprint = idempotency.fingerprint(request.method, request.url.path, await request.body())
    stored = await idempotency.lookup(services.pool, principal.name, key, request_fingerprint)
    if stored is not None:
        return Response(
            stored.body,
            status_code=stored.status,
            media_type="application/json",
            headers={**stored.headers, "Idempotent-Replayed": "true"},
        )
    response = await act(_command_key(principal, key))
    if response.status_code < 500 and response.status_code != 503:
        headers = {k: v for k, v in response.headers.items() if k.lower() == "location"}
        await idempotency.remember(
            services.pool,
            principal.name,
            key,
            request_fingerprint,
            idempotency.StoredReply(response.status_code, headers, response.body.decode()),
        )
    return response


def _at_risk(row: asyncpg.Record) -> bool:
    """The next deadline's warning point has passed (its warning is recorded) and it is not yet breached."""
    state = row["state"] if isinstance(row["state"], dict) else json.loads(row["state"])
    clock = state.get("clocks", {}).get(row["next_deadline_kind"] or "")
    return bool(clock and clock.get("warned") and not clock.get("repeat"))


def _command_key(principal: Principal, key: str) -> str:
    """The command's idempotency key: per caller, bounded in length whatever the header's length."""
    return "api:" + hashlib.sha256(f"{principal.name}\n{key}".encode()).hexdigest()[:48]


def _refusal(exc: CommandRefused) -> Problem:
    if exc.rule.startswith("permission."):
        return Problem(403, "Forbidden", str(exc), rule=exc.rule)
    if exc.rule in ("command.malformed", KEY_REUSED):
        return Problem(422, "Invalid Request", str(exc), rule=exc.rule)
    return Problem(409, "Conflict", str(exc), rule=exc.rule)


async def _state_or_404(services: Services, case_id: str) -> EscalationState:
    try:
        return await case_state(services.client, case_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found(f"case {case_id!r}") from None
        raise
    except WorkflowQueryFailedError as exc:
        raise Problem(409, "Conflict", f"case {case_id!r} is not stored yet: {exc}", rule="case.not_ready") from None


# ---------------------------------------------------------------------------- routes


def _routes(app: FastAPI) -> None:  # noqa: C901 - one nested function per route
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "a dependency is unreachable"}})
    async def readyz(request: Request) -> Response:
        """PostgreSQL and Temporal are reachable."""
        services = _services(request)
        checks: dict[str, str] = {}
        try:
            async with services.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1", timeout=2)
            checks["postgresql"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            checks["postgresql"] = f"unreachable: {exc}"
        try:
            await services.client.service_client.check_health(timeout=timedelta(seconds=2))
            checks["temporal"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["temporal"] = f"unreachable: {exc}"
        ready = all(v == "ok" for v in checks.values())
        return _json({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)

    @app.post("/v1/escalations", status_code=201, response_model=CommandReply, tags=["cases"])
    async def open_escalation(
        request: Request,
        body: OpenBody,  # type: ignore[valid-type]
        principal: Annotated[Principal, Depends(_principal)],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response:
        """Open a case. Without `case_id`, one is derived from the Idempotency-Key (or generated)."""
        services = _services(request)

        async def act(command_key: str) -> Response:
            fields = body.model_dump()  # type: ignore[attr-defined]
            if not fields.get("case_id"):
                fields["case_id"] = "c-" + hashlib.sha256(command_key.encode()).hexdigest()[:16]
            try:
                command = OpenEscalation.model_validate(
                    {**fields, "actor": principal.actor, "idempotency_key": command_key}
                )
                # Permission, override and calendar rules, before starting anything, under the
                # version the worker will pin (the latest published; the file until one is).
                decide_open(command, await services.policy_in_force())
            except DomainError as exc:
                raise (
                    Problem(403, "Forbidden", str(exc), rule=exc.rule)
                    if exc.rule.startswith("permission.")
                    else Problem(422, "Invalid Request", str(exc), rule=exc.rule)
                ) from None
            try:
                state = await open_case_and_wait(services.client, command, task_queue=services.task_queue)
            except CommandRefused as exc:
                raise _refusal(exc) from None
            if command.idempotency_key not in state.command_keys:
                raise Problem(409, "Conflict", f"case {command.case_id!r} exists already", rule="open.case_exists")
            events = await services.store.read_stream(stream_id_for(command.case_id))
            reply = CommandReply(duplicate=False, events=events[:1], state=state)
            return _json(reply, 201, {"Location": f"/v1/escalations/{quote(command.case_id, safe='')}"})

        return await _idempotent(request, principal, idempotency_key, act)

    @app.get("/v1/escalations", response_model=CasePage, tags=["cases"])
    async def list_escalations(
        request: Request,
        principal: Annotated[Principal, Depends(_reader)],
        status: Status | None = None,
        priority: Priority | None = None,
        level: Annotated[int | None, Query(ge=1, le=100)] = None,
        customer_id: SearchText = None,
        owner: SearchText = None,
        breached: bool | None = None,
        active: Annotated[bool | None, Query(description="only open, in-progress and proposed cases")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        """Cases from the case-list read model, soonest next deadline first (none last)."""
        clauses, args = [], []
        for column, value in (
            ("status", status),
            ("priority", priority),
            ("level", level),
            ("customer_id", customer_id),
            ("owner", owner),
            ("breached", breached),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        if cursor:
            try:
                after = json.loads(base64.urlsafe_b64decode(cursor.encode()))
                after_deadline = datetime.fromisoformat(after["d"]) if after["d"] else None
                after_id = str(after["id"])
            except (ValueError, KeyError, TypeError):
                raise Problem(
                    422, "Invalid Request", "cursor is not one this API returned", rule="request.bad_cursor"
                ) from None
            args += [after_deadline, after_id]
            d, i = f"${len(args) - 1}", f"${len(args)}"
            clauses.append(
                f"(coalesce(next_deadline_at, 'infinity') > coalesce({d}::timestamptz, 'infinity') OR "
                f"(coalesce(next_deadline_at, 'infinity') = coalesce({d}::timestamptz, 'infinity') AND case_id > {i}))"
            )
        if active is not None:
            clauses.append(f"status {'' if active else 'NOT '}IN ('open', 'in_progress', 'resolution_proposed')")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        args.append(limit + 1)
        async with _services(request).pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT * FROM case_list {where} ORDER BY coalesce(next_deadline_at, 'infinity'), case_id "
                f"LIMIT ${len(args)}",
                *args,
            )
        items = [{**{k: v for k, v in dict(r).items() if k != "state"}, "at_risk": _at_risk(r)} for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            token = {
                "d": last["next_deadline_at"].isoformat() if last["next_deadline_at"] else None,
                "id": last["case_id"],
            }
            next_cursor = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
        return _json({"items": items, "next_cursor": next_cursor})

    @app.get("/v1/me", tags=["auth"])
    async def me(principal: Annotated[Principal, Depends(_principal)]) -> Response:
        """Who the token belongs to, its role, and the commands that role may run at all."""
        commands = [name for name, roles in PERMISSIONS.items() if principal.role in roles]
        return _json(
            {
                "name": principal.name,
                "role": principal.role.value,
                "may_read": principal.role in READ_ROLES,
                "commands": [name for name in commands if name in ROUTE_OF_COMMAND or name == "open"],
            }
        )

    @app.get("/v1/escalations/{case_id}/commands", tags=["cases"])
    async def case_commands(
        request: Request, case_id: CasePath, principal: Annotated[Principal, Depends(_reader)]
    ) -> Response:
        """The commands the caller's role may run on this case now, by the rules the workflow applies.

        Each is sent as `POST /v1/escalations/{case_id}/{route}`. A listed command can
        still be refused for what its body says; an unlisted one is always refused.
        """
        state = await _state_or_404(_services(request), case_id)
        names = available_commands(state, principal.role, datetime.now(UTC))
        offered = [{"name": n, "route": ROUTE_OF_COMMAND[n]} for n in names if n in ROUTE_OF_COMMAND]
        return _json({"case_id": case_id, "role": principal.role.value, "commands": offered})

    @app.get("/v1/escalations/{case_id}", response_model=EscalationState, tags=["cases"])
    async def get_escalation(
        request: Request, case_id: CasePath, principal: Annotated[Principal, Depends(_reader)]
    ) -> Response:
        """The live state of a case (the workflow's `state` query)."""
        return _json(await _state_or_404(_services(request), case_id))

    for segment, name in COMMAND_ROUTES.items():
        _command_route(app, segment, name)

    @app.get(
        "/v1/escalations/{case_id}/audit",
        tags=["audit"],
        responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
    )
    async def audit(
        request: Request,
        case_id: CasePath,
        principal: Annotated[Principal, Depends(_reader)],
        as_of: datetime | None = None,
        format: Annotated[str, Query(pattern="^(json|jsonl|csv)$")] = "json",
    ) -> Response:
        """The case's timeline from the event store; with `as_of`, only up to that instant, and the state then."""
        if as_of is not None and as_of.tzinfo is None:
            raise Problem(
                422, "Invalid Request", "as_of needs a time zone, e.g. 2026-11-22T10:00:00Z", rule="request.invalid"
            )
        store = _services(request).store
        events = await store.read_stream(stream_id_for(case_id))
        if not events:
            raise not_found(f"case {case_id!r}")
        if as_of is not None:
            events = [e for e in events if e.occurred_at <= as_of]
        if format == "jsonl":
            return PlainTextResponse(export_jsonl(events), media_type="application/x-ndjson")
        if format == "csv":
            return PlainTextResponse(export_csv(events), media_type="text/csv")
        state = await state_as_of(store, case_id, as_of) if as_of is not None else None
        timeline = []
        for e in events:
            action, details = describe(e)
            timeline.append(
                {
                    "version": e.version,
                    "occurred_at": e.occurred_at,
                    "recorded_at": e.recorded_at,
                    "actor": e.actor.model_dump(),
                    "type": e.type,
                    "action": action,
                    "details": details,
                    "event_id": str(e.event_id),
                    "hash": e.hash,
                }
            )
        body = {
            "case_id": case_id,
            "as_of": as_of,
            "events": timeline,
            "state": json.loads(state.model_dump_json()) if state else None,
        }
        return _json(body)

    @app.get("/v1/escalations/{case_id}/verify", tags=["audit"])
    async def verify(
        request: Request, case_id: CasePath, principal: Annotated[Principal, Depends(_reader)]
    ) -> Response:
        """Recompute the case's hash chain from the stored bytes."""
        store = _services(request).store
        stream = stream_id_for(case_id)
        events = await store.read_stream(stream)
        if not events:
            raise not_found(f"case {case_id!r}")
        broken = await store.verify_stream(stream)
        return _json(
            {
                "case_id": case_id,
                "events": len(events),
                "ok": broken is None,
                "broken": None if broken is None else {"version": broken.version, "reason": broken.reason},
            }
        )

    @app.get("/v1/audit/digest", tags=["audit"])
    async def digest(request: Request, principal: Annotated[Principal, Depends(_reader)]) -> Response:
        """The head hash of every stream and one digest over them; save it to prove later that nothing changed."""
        return _json(await make_digest(_services(request).pool))

    @app.get("/v1/metrics", tags=["metrics"])
    async def metrics(request: Request, principal: Annotated[Principal, Depends(_reader)]) -> Response:
        """Operations metrics from the case list (definitions in projections/metrics.py)."""
        async with _services(request).pool.acquire() as conn:
            return _json(await compute_metrics(conn))

    @app.get("/v1/metrics/trend", tags=["metrics"])
    async def metrics_trend(
        request: Request,
        principal: Annotated[Principal, Depends(_reader)],
        bucket: Annotated[str, Query(pattern="^(day|week|month)$")] = "day",
    ) -> Response:
        """Median time to acknowledge and to resolve per priority, per day (week, month) of opening."""
        async with _services(request).pool.acquire() as conn:
            return _json(await compute_trend(conn, bucket))

    @app.get("/v1/systemic-issues", tags=["metrics"])
    async def systemic_issues(request: Request, principal: Annotated[Principal, Depends(_reader)]) -> Response:
        """Recurring root causes with the cases behind them, and accounts at risk."""
        async with _services(request).pool.acquire() as conn:
            issues = await conn.fetch("SELECT * FROM systemic_issues ORDER BY case_count DESC, root_cause")
            risky = await conn.fetch("SELECT * FROM accounts_at_risk ORDER BY cases_in_window DESC, customer_id")
        return _json({"systemic_issues": [dict(r) for r in issues], "accounts_at_risk": [dict(r) for r in risky]})

    @app.post("/v1/accounts/{customer_id}/signals", response_model=SignalReply, tags=["signals"])
    async def account_signal(
        request: Request,
        customer_id: Annotated[str, Path(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")],
        body: SignalBody,
        principal: Annotated[Principal, Depends(_principal)],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response:
        """An early-warning signal. Policy rules decide whether it opens a proactive case; at most one is open per
        account, and later signals are attached to it."""
        services = _services(request)
        try:
            authorize(principal.actor, "attach_signal")
        except DomainError as exc:
            raise Problem(403, "Forbidden", str(exc), rule=exc.rule) from None
        if not customer_id or len(customer_id) > 128 or not customer_id.isprintable():
            raise Problem(
                422, "Invalid Request", "customer_id must be 1..128 printable characters", rule="request.invalid"
            )

        async def act(command_key: str) -> Response:
            try:
                reply = await receive_signal(services, principal, customer_id, body, command_key)
            except CommandRefused as exc:
                raise _refusal(exc) from None
            return _json(reply, 201 if reply.outcome == "opened" else 200)

        return await _idempotent(request, principal, idempotency_key, act)


def _command_route(app: FastAPI, segment: str, name: str) -> None:
    body_model = BODY_MODELS[name]
    command_class = COMMAND_CLASSES[name]

    async def run_command(
        request: Request,
        case_id: CasePath,
        body: body_model,  # type: ignore[valid-type]
        principal: Annotated[Principal, Depends(_principal)],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response:
        services = _services(request)
        try:
            authorize(principal.actor, name)
        except DomainError as exc:
            raise Problem(403, "Forbidden", str(exc), rule=exc.rule) from None

        async def act(command_key: str) -> Response:
            try:
                command = command_class.model_validate(
                    {**body.model_dump(), "actor": principal.actor, "idempotency_key": command_key}  # type: ignore[attr-defined]
                )
            except ValidationError as exc:
                raise Problem(422, "Invalid Request", str(exc), rule="request.invalid") from None
            try:
                result = await send_command(services.client, case_id, command)
            except CommandRefused as exc:
                raise _refusal(exc) from None
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    await _state_or_404(services, case_id)  # 404 if it never existed
                    raise Problem(
                        409, "Conflict", f"case {case_id!r} has finished and accepts no commands", rule="case.finished"
                    ) from None
                raise
            except WorkflowUpdateFailedError as exc:
                raise Problem(409, "Conflict", f"command failed: {exc.cause}", rule="command.failed") from None
            events = result.events
            if result.duplicate:
                stored = await services.store.read_stream(stream_id_for(case_id))
                events = [e for e in stored if e.version in set(result.versions)]
            return _json(CommandReply(duplicate=result.duplicate, events=events, state=result.state))

        return await _idempotent(request, principal, idempotency_key, act)

    run_command.__name__ = f"command_{name}"
    # Annotations are strings here (postponed evaluation); this one is local, so give FastAPI the class.
    run_command.__annotations__["body"] = body_model
    app.post(
        f"/v1/escalations/{{case_id}}/{segment}",
        response_model=CommandReply,
        tags=["commands"],
        summary=f"{segment.replace('-', ' ').capitalize()} ({command_class.__name__})",
        description=(command_class.__doc__ or "").strip() or None,
        responses={
            403: {"description": "role not allowed"},
            404: {"description": "unknown case"},
            409: {"description": "not allowed in the current state (names the rule)"},
        },
    )(run_command)
