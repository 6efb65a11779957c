"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
from fastapi import APIRouter
from fastapi.responses import Response

from api.dependencies import ServicesDep
from api.routes.responses import json_response
from api.services import Services
from observability import metrics
from projections.channels import configuration_problems
from projections.periodic import every_until_stopped
from projections.runner import projection_faults
from projections.watchdog import count_overdue

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a dependency is unreachable"}})
async def readyz(services: ServicesDep) -> Response:
    """PostgreSQL and Temporal are reachable and no projection is stopped at a corrupt event (503 otherwise).
    Also reported, without failing it: a channel or target that the directory, the policy or a waiting delivery
    names but the configuration lacks, and deadlines overdue with no breach stored (the watchdog)."""
    ready, checks = await readiness(services)
    return json_response({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)


async def readiness(services: Services) -> tuple[bool, dict[str, str]]:
    """Whether the API is ready, and each check's finding ("ok" or what is wrong); sets the readiness gauges."""
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
            checks["deadlines"] = await _deadlines(conn, services)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        checks["postgresql"] = f"unreachable: {exc}"
    try:
        await services.client.service_client.check_health(timeout=timedelta(seconds=2))
        checks["temporal"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["temporal"] = f"unreachable: {exc}"
    # A channel missing from the configuration is reported (its deliveries wait, the inbox still works) but
    # does not take the service out of rotation: reading and commanding cases need none of it. Nor does an
    # overdue deadline (the watchdog's finding: its alert pages; this API can still serve every case).
    ready = all(v == "ok" for k, v in checks.items() if k not in ("notifications", "deadlines"))
    metrics.READY.set(1 if ready else 0)
    metrics.set_labelled(metrics.READINESS, [((name,), 1 if v == "ok" else 0) for name, v in checks.items()])
    return ready, checks


async def _deadlines(conn: asyncpg.Connection, services: Services) -> str:
    """The watchdog's finding: a count (no case ids: /readyz needs no token; `escalations watchdog` lists them)."""
    try:
        overdue = await count_overdue(conn, services.watchdog_margin)
    except Exception as exc:  # noqa: BLE001 - the watchdog's own failure is its finding, not PostgreSQL's
        return f"not checked: {exc}"
    if not overdue:
        return "ok"
    return (
        f"{overdue} deadline(s) more than {int(services.watchdog_margin.total_seconds())} s overdue with no breach "
        "stored (escalations watchdog lists them)"
    )


async def watch_readiness(services: Services, stop: asyncio.Event, every: float = 10.0) -> None:
    """Check readiness every ``every`` seconds until ``stop``, so ``escalations_ready`` is current whenever
    Prometheus scrapes (the alert on it does not depend on anyone calling /readyz)."""

    async def check() -> None:
        try:
            await readiness(services)
        except Exception:
            metrics.READY.set(0)  # a check that cannot run is a gauge at 0, never a dead watcher
            raise

    await every_until_stopped(stop, every, check, "a readiness check")
