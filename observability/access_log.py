"""The API's edge: one access-log line per request, its request id and its metrics. (The request's server span
is FastAPI's own, when tracing is on: ``api/app.py``.)

The line carries the request id (the caller's ``X-Request-Id`` when it is a sane token, else a new one, and
sent back in the reply), the method, the route template and the path, the token's *name* (never the token),
the case id when the route names one, the status and the duration. Every other line logged while the request
runs carries the same request id (and trace id), through structlog's context variables.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog

from observability import metrics

log = structlog.get_logger("escalations.access")

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

Scope = dict[str, Any]


class RequestTelemetry:
    """Pure ASGI middleware (no request body buffering, no extra task per request)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        request_id = given if _SANE_REQUEST_ID.match(given) else uuid.uuid4().hex
        status = 500  # what the caller gets if the app raises past every handler

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        method, path = scope["method"], scope["path"]
        # Inside FastAPI's own server span when tracing is on (it wraps the whole middleware stack), so this
        # line and every line the request logs carry its trace id (observability.tracing.add_trace_ids).
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                route = _route(scope)
                metrics.record_request(method, route, status, seconds)
                log.info(
                    "request",
                    request_id=request_id,
                    method=method,
                    route=route,
                    path=path,
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                    token=scope.get("state", {}).get("token_name"),
                    case_id=scope.get("path_params", {}).get("case_id"),
                )


def _route(scope: Scope) -> str:
    """The route template (``/v1/escalations/{case_id}``): bounded label values, no ids in metrics."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
