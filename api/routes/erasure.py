"""Erasure of a customer's personal data over HTTP (admins), and the record of erasures (admins, auditors)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal
from api.dependencies import ServicesDep, role_gate
from api.errors import Problem
from api.routes.responses import json_response
from projections.erasure import MAX_REASON, ErasureRefused, erase_subject, erasures
from workflows.core.events import Identifier
from workflows.core.vocabulary import Role

router = APIRouter(tags=["audit"])

Admin = Annotated[Principal, Depends(role_gate(frozenset({Role.ADMIN}), "permission.erase", "erase personal data"))]
ErasureReader = Annotated[
    Principal,
    Depends(role_gate(frozenset({Role.ADMIN, Role.AUDITOR}), "permission.erasures", "read the erasure record")),
]


class EraseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Identifier
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON)]


@router.post("/v1/erasures", status_code=201, responses={409: {"description": "nothing to erase"}})
async def erase(request: EraseRequest, caller: Admin, services: ServicesDep) -> Response:
    """Erase the customer's personal data: destroy their keys (every sealed text of theirs then reads
    `[erased]` everywhere), record who, when and why, and redact the read models. Events, hash chains, the
    transparency log and every checkpoint and bundle are unchanged and still verify."""
    try:
        erasure = await erase_subject(services.pool, request.customer_id, caller.actor, request.reason)
    except ErasureRefused as exc:
        status = 409 if exc.rule == "erase.nothing_to_erase" else 422
        raise Problem(status, "Erasure refused", str(exc), rule=exc.rule) from None
    return json_response(dataclasses.asdict(erasure), 201)


@router.get("/v1/erasures")
async def erasure_record(
    _: ErasureReader, services: ServicesDep, customer_id: Annotated[str | None, Query(max_length=128)] = None
) -> Response:
    """Every erasure (of one customer), newest first: who, when, why, which keys and cases."""
    return json_response({"erasures": await erasures(services.pool, customer_id)})
