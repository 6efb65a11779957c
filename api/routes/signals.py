"""Early-warning signals about an account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from api import idempotency
from api.dependencies import Caller, IdempotencyKey, ServicesDep
from api.errors import Problem, refusal
from api.models import SignalBody, SignalReply
from api.routes.responses import json_response
from api.signals import receive_signal
from workflows.client import CommandRefused
from workflows.core.decide import authorize
from workflows.core.errors import DomainError

router = APIRouter(tags=["signals"])


@router.post("/v1/accounts/{customer_id}/signals", response_model=SignalReply)
async def account_signal(
    request: Request,
    customer_id: Annotated[str, Path(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")],
    body: SignalBody,
    caller: Caller,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """An early-warning signal. Policy rules decide whether it opens a proactive case; at most one is open per
    account, and later signals are attached to it."""
    try:
        authorize(caller.actor, "attach_signal")
    except DomainError as exc:
        raise Problem(403, "Forbidden", str(exc), rule=exc.rule) from None
    if not customer_id or len(customer_id) > 128 or not customer_id.isprintable():
        raise Problem(422, "Invalid Request", "customer_id must be 1..128 printable characters", rule="request.invalid")

    async def act(command_key: str) -> Response:
        try:
            signal_reply = await receive_signal(services, caller, customer_id, body, command_key)
        except CommandRefused as exc:
            raise refusal(exc.rule, str(exc)) from None
        return json_response(signal_reply, 201 if signal_reply.outcome == "opened" else 200)

    return await idempotency.idempotent(request, services.pool, caller, idempotency_key, act)
