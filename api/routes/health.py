"""Liveness and readiness."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import Response

from api.dependencies import ServicesDep
from api.routes.responses import json_response
from projections.channels import configuration_problems
from projections.runner import projection_faults

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable"}})
async def readyz(services: ServicesDep) -> Response:
    """PostgreSQL and Temporal are reachable, no projection is stopped at a corrupt event, and no channel or
    target that the directory, the policy or a waiting delivery names is missing from the configuration."""
    checks: dict[str, str] = {}
    try:
        async with services.pool.acquire(timeout=2) as conn:
            faults = await projection_faults(conn)
            problems = await configuration_problems(conn, services.channels, services.policy)
        checks["postgresql"] = "ok"
        checks["projections"] = (
            "; ".join(f"{name} stopped: {error}" for name, error in faults.items()) if faults else "ok"
        )
        checks["notifications"] = "; ".join(problems) if problems else "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        checks["postgresql"] = f"unreachable: {exc}"
    try:
        await services.client.service_client.check_health(timeout=timedelta(seconds=2))
        checks["temporal"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["temporal"] = f"unreachable: {exc}"
    # A channel missing from the configuration is reported (its deliveries wait, the inbox still works) but
    # does not take the service out of rotation: reading and commanding cases need none of it.
    ready = all(v == "ok" for k, v in checks.items() if k != "notifications")
    return json_response({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)
