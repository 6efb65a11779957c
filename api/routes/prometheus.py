"""``GET /metrics``: the Prometheus exposition of this process (no token, like ``/healthz``: label values are
route templates, command names, rules and priorities, never a case, a person or a token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from observability.metrics import exposition

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Every metric of this process in Prometheus' text format. In the dev stack (one process) that includes
    the worker's and the projector's; in production each of those serves its own (README "Operating it")."""
    body, content_type = exposition()
    return Response(body, media_type=content_type)
