"""The FastAPI application. ``create_app(services)`` wires the routers to a pool, a Temporal client and the policy.

Every route answers with JSON, or with ``application/problem+json`` naming the
rule that refused it: 401 no or bad token, 403 role, 404 unknown case, 409 the
case's state, 413 body too large, 422 malformed body, 503 a dependency is down
(``api/errors.py`` is the one mapping). Routers, one per concern, live in ``api/routes/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from api.console import install_console
from api.errors import Problem, install_error_handlers
from api.routes import (
    audit,
    auth,
    cases,
    commands,
    directory,
    erasure,
    health,
    metrics,
    notifications,
    prometheus,
    signals,
    tokens,
    transparency,
)
from api.services import Services
from observability import tracing
from observability.access_log import RequestTelemetry

MAX_BODY_BYTES = 64 * 1024


def create_app(services: Services | Callable[[], Awaitable[Services]]) -> FastAPI:
    """The app; ``services`` may be ready, or a factory run at start-up (its pool closed at shutdown)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = await services() if callable(services) else services
        app.state.services = built
        stop = asyncio.Event()
        watcher = asyncio.create_task(health.watch_readiness(built, stop))
        try:
            yield
        finally:
            stop.set()
            await watcher
            if callable(services):
                await built.pool.close()

    app = FastAPI(
        # FastAPI's own OpenTelemetry server span (when a tracer provider is installed: observability.tracing);
        # metrics are Prometheus' (GET /metrics), logs structlog's.
        telemetry={"tracing": tracing.enabled(), "metrics": False, "logs": False},
        title="Escalations API",
        version="1.0",
        description="Open and drive customer escalations; read the audit trail and metrics. "
        "Authenticate with `Authorization: Bearer <token>` (`escalations token create`).",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    _install_body_limit(app)
    app.add_middleware(RequestTelemetry)  # outermost of ours: it sees every request, refused ones too
    for router in (
        health.router,
        prometheus.router,
        cases.router,
        commands.router,
        audit.router,
        metrics.router,
        signals.router,
    ):
        app.include_router(router)
    app.include_router(auth.router)
    app.include_router(tokens.router)
    app.include_router(directory.router)
    app.include_router(notifications.router)
    app.include_router(transparency.router)
    app.include_router(erasure.router)
    install_console(app)
    return app


def _too_large() -> Problem:
    return Problem(413, "Payload Too Large", f"bodies are limited to {MAX_BODY_BYTES} bytes", rule="request.too_large")


def _install_body_limit(app: FastAPI) -> None:
    @app.middleware("http")
    async def limit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _too_large().response(request.url.path)
        if request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    return _too_large().response(request.url.path)
            request._body = body  # noqa: SLF001 - starlette re-reads the cached body downstream
        return await call_next(request)
