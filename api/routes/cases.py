"""Cases: open one, list them, read one, and what the caller may do on it now. Reads come from the
event store and the case-list read model, so they keep answering after a workflow's history is gone."""

from __future__ import annotations

import hashlib
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api import idempotency
from api.dependencies import Caller, CasePath, IdempotencyKey, Reader, SearchText, ServicesDep
from api.errors import Problem
from api.models import CasePage, CommandReply, OpenBody
from api.routes.responses import counted, json_response, reply
from projections import queries
from workflows.core.case_view import CaseView
from workflows.core.commands import SPECS, OpenEscalation
from workflows.core.state import Status
from workflows.core.vocabulary import Priority

router = APIRouter(tags=["cases"])


@router.post("/v1/escalations", status_code=201, response_model=CommandReply)
async def open_escalation(
    request: Request, body: OpenBody, caller: Caller, services: ServicesDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Open a case. Without `case_id`, one is derived from the Idempotency-Key (or generated)."""

    async def act(command_key: str) -> Response:
        fields = body.model_dump()
        if not fields.get("case_id"):
            fields["case_id"] = "c-" + hashlib.sha256(command_key.encode()).hexdigest()[:16]
        command = OpenEscalation.model_validate({**fields, "actor": caller.actor, "idempotency_key": command_key})
        outcome = await services.open_case(command)
        return reply(outcome, 201, {"Location": f"/v1/escalations/{quote(command.case_id, safe='')}"})

    return await counted("open", idempotency.idempotent(request, services.pool, caller, idempotency_key, act))


@router.get("/v1/escalations", response_model=CasePage)
async def list_escalations(
    reader: Reader,
    services: ServicesDep,
    status: Status | None = None,
    priority: Priority | None = None,
    level: Annotated[int | None, Query(ge=1, le=100)] = None,
    customer_id: SearchText = None,
    owner: SearchText = None,
    team: SearchText = None,
    unassigned: Annotated[bool | None, Query(description="true: cases no one owns (a team's queue)")] = None,
    breached: bool | None = None,
    active: Annotated[bool | None, Query(description="only open, in-progress and proposed cases")] = None,
    awaiting_follow_up: Annotated[
        bool | None, Query(description="resolved or closed cases whose follow-up is not recorded yet")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Cases from the case-list read model, soonest next deadline first (none last)."""
    filters = queries.CaseFilters(
        status=status.value if status else None,
        priority=priority.value if priority else None,
        level=level,
        customer_id=customer_id,
        owner=owner,
        team=team,
        unassigned=unassigned,
        breached=breached,
        active=active,
        awaiting_follow_up=awaiting_follow_up,
    )
    try:
        async with services.pool.acquire() as conn:
            page = await queries.list_cases(conn, filters, limit=limit, cursor=cursor)
    except queries.BadCursor as exc:
        raise Problem(422, "Invalid Request", str(exc), rule="request.bad_cursor") from None
    return json_response({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/v1/escalations/{case_id}/commands")
async def case_commands(case_id: CasePath, reader: Reader, services: ServicesDep) -> Response:
    """The commands the caller's role may run on this case now, by the rules the workflow applies.

    Each is sent as `POST /v1/escalations/{case_id}/{route}`. A listed command can
    still be refused for what its body says; an unlisted one is always refused.
    """
    names = await services.commands_for(case_id, reader.role)
    offered = [{"name": n, "route": SPECS[n].route} for n in names]
    return json_response({"case_id": case_id, "role": reader.role.value, "commands": offered})


@router.get("/v1/escalations/{case_id}", response_model=CaseView)
async def get_escalation(case_id: CasePath, reader: Reader, services: ServicesDep) -> Response:
    """The case as its events in the store make it, with each running deadline's due instant."""
    return json_response(await services.read_case(case_id))
