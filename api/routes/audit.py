"""The audit trail of a case, its hash-chain verification, and the digest over every stream."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from api.dependencies import CasePath, Reader, ServicesDep
from api.errors import Problem, not_found
from api.routes.responses import json_response
from projections import queries
from projections.audit import export_csv, export_jsonl, make_digest
from projections.audit_trail import describe
from workflows.core.events import stream_id_for
from workflows.core.evolve import fold

router = APIRouter(tags=["audit"])


@router.get(
    "/v1/escalations/{case_id}/audit",
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
)
async def audit(
    case_id: CasePath,
    reader: Reader,
    services: ServicesDep,
    as_of: datetime | None = None,
    format: Annotated[str, Query(pattern="^(json|jsonl|csv)$")] = "json",
) -> Response:
    """The case's timeline from the event store; with `as_of`, only up to that instant, and the state then."""
    if as_of is not None and as_of.tzinfo is None:
        raise Problem(
            422, "Invalid Request", "as_of needs a time zone, e.g. 2026-11-22T10:00:00Z", rule="request.invalid"
        )
    if format == "jsonl" and as_of is None:
        # The exact stored bytes, unparsed: an export still works for a case whose record was tampered
        # with, and its verification (scripts/verify_export.py) shows where.
        rows = await services.store.read_stored(stream_id_for(case_id))
        if not rows:
            raise not_found(f"case {case_id!r}")
        return PlainTextResponse(export_jsonl(rows), media_type="application/x-ndjson")
    try:
        events = await queries.case_events(services.store, case_id)
    except queries.CaseNotFound:
        raise not_found(f"case {case_id!r}") from None
    if as_of is not None:
        events = [e for e in events if e.occurred_at <= as_of]
    if format == "jsonl":
        versions = {e.version for e in events}
        rows = [r for r in await services.store.read_stored(stream_id_for(case_id)) if r.version in versions]
        return PlainTextResponse(export_jsonl(rows), media_type="application/x-ndjson")
    if format == "csv":
        return PlainTextResponse(export_csv(events), media_type="text/csv")
    state = fold(events) if as_of is not None else None
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
    return json_response(body)


@router.get("/v1/escalations/{case_id}/verify")
async def verify(case_id: CasePath, reader: Reader, services: ServicesDep) -> Response:
    """Recompute the case's hash chain from the stored bytes; a changed byte is a break at its version."""
    try:
        return json_response(await queries.verify_case(services.store, case_id))
    except queries.CaseNotFound:
        raise not_found(f"case {case_id!r}") from None


@router.get("/v1/audit/digest")
async def digest(reader: Reader, services: ServicesDep) -> Response:
    """The head hash of every stream and one digest over them; save it to prove later that nothing changed."""
    return json_response(await make_digest(services.pool))
