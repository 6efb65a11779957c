"""Operations metrics and systemic issues, from the read models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from api.dependencies import Reader, ServicesDep
from api.routes.responses import json_response
from projections import queries
from projections.metrics import compute_metrics, compute_trend

router = APIRouter(tags=["metrics"])


@router.get("/v1/metrics")
async def metrics(reader: Reader, services: ServicesDep) -> Response:
    """Operations metrics from the case list (definitions in projections/metrics.py)."""
    async with services.pool.acquire() as conn:
        return json_response(await compute_metrics(conn))


@router.get("/v1/metrics/trend")
async def metrics_trend(
    reader: Reader, services: ServicesDep, bucket: Annotated[str, Query(pattern="^(day|week|month)$")] = "day"
) -> Response:
    """Median time to acknowledge and to resolve per priority, per day (week, month) of opening."""
    async with services.pool.acquire() as conn:
        return json_response(await compute_trend(conn, bucket))


@router.get("/v1/systemic-issues")
async def systemic_issues(
    reader: Reader, services: ServicesDep, as_of: Annotated[AwareDatetime | None, Query()] = None
) -> Response:
    """Recurring root causes with the cases behind them, and accounts at risk, each counted within its window
    ending now (or ``as_of``): rows leave the list when their cases leave the window."""
    async with services.pool.acquire() as conn:
        return json_response(await queries.systemic_issues(conn, as_of))
