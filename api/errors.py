"""Errors as ``application/problem+json`` (RFC 9457): every refusal says which rule refused it.

The one place that maps what went wrong to a status: ``Problem`` for what a route decides itself,
``refusal`` for a rule of the domain, and the handlers ``install_error_handlers`` adds for the
framework's own refusals and for unreachable dependencies (503, never a 500 with a stack trace).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

from events.store import CorruptEvent
from workflows.core.idempotency import KEY_REUSED

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, *, rule: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.rule, self.extra = status, title, detail, rule, extra

    def response(self, instance: str | None = None) -> JSONResponse:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.rule:
            body["rule"] = self.rule
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM_TYPE, headers=headers)


def not_found(what: str) -> Problem:
    return Problem(404, "Not Found", f"{what} does not exist", rule="case.unknown")


def unavailable(what: str, error: object) -> Problem:
    return Problem(503, "Service Unavailable", f"{what} is unreachable: {error}", rule="dependency.unavailable")


# Rules that refuse what the request says (422), not what the case's state allows now (409).
INPUT_RULES = frozenset(
    {
        "command.malformed",
        KEY_REUSED,
        "open.override_needs_reason",
        "open.early_warning_needs_signal",
        "open.unknown_calendar",
    }
)


def refusal(rule: str, message: str) -> Problem:
    """A domain refusal as a problem: 403 for a role, 422 for what the request says, 409 for the case's state."""
    if rule.startswith("permission."):
        return Problem(403, "Forbidden", message, rule=rule)
    if rule in INPUT_RULES:
        return Problem(422, "Invalid Request", message, rule=rule)
    return Problem(409, "Conflict", message, rule=rule)


_FRAMEWORK_REFUSALS = {
    400: ("request.unparseable", "the body could not be parsed as JSON (too deeply nested, or not UTF-8)"),
    404: ("route.unknown", "no such route; the API is described at /openapi.json"),
    405: ("request.method_not_allowed", "this route does not take that method; see /openapi.json"),
}


def install_error_handlers(app: FastAPI) -> None:
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

    @app.exception_handler(CorruptEvent)
    async def corrupt(request: Request, exc: CorruptEvent) -> JSONResponse:
        # The record itself is damaged: reported with where, never a 500 (verify shows the break).
        return Problem(409, "Conflict", str(exc), rule="store.corrupt_event", version=exc.version).response(
            request.url.path
        )

    @app.exception_handler(RPCError)
    async def temporal_down(request: Request, exc: RPCError) -> JSONResponse:
        return unavailable("Temporal", exc.message).response(request.url.path)

    @app.exception_handler(OSError)
    async def connection_down(request: Request, exc: OSError) -> JSONResponse:
        return unavailable("a dependency", exc).response(request.url.path)

    @app.exception_handler(asyncpg.DataError)
    async def bad_value(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # A value PostgreSQL refuses (out of range, bytes not in UTF-8): the caller's input, not an outage.
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Problem(
            422, "Invalid Request", f"a value was refused: {message}", rule="request.invalid_value"
        ).response(request.url.path)

    @app.exception_handler(asyncpg.InterfaceError)
    async def pool_down(request: Request, exc: asyncpg.InterfaceError) -> JSONResponse:
        return unavailable("PostgreSQL", exc).response(request.url.path)
