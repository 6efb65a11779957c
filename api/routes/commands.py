"""One route per command, ``POST /v1/escalations/{case_id}/{route}``, built from the commands' declarations."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api import idempotency
from api.dependencies import Caller, CasePath, IdempotencyKey, ServicesDep
from api.errors import Problem
from api.models import BODY_MODELS, CommandReply
from api.routes.responses import counted, reply
from observability import metrics
from workflows.core.commands import SPECS, CommandSpec
from workflows.core.decide import authorize
from workflows.core.errors import DomainError

router = APIRouter(tags=["commands"])


def _command_route(spec: CommandSpec) -> None:
    body_model = BODY_MODELS[spec.name]

    async def run_command(
        request: Request,
        case_id: CasePath,
        body: body_model,  # type: ignore[valid-type]
        caller: Caller,
        services: ServicesDep,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        try:
            authorize(caller.actor, spec.name)  # before anything is stored or sent
        except DomainError as exc:
            metrics.record_command(spec.name, exc.rule)
            raise Problem(403, "Forbidden", str(exc), rule=exc.rule) from None

        async def act(command_key: str) -> Response:
            fields = {**body.model_dump(), "actor": caller.actor, "idempotency_key": command_key}  # type: ignore[attr-defined]
            try:
                command = spec.command.model_validate(fields)
            except ValidationError as exc:
                raise Problem(422, "Invalid Request", str(exc), rule="request.invalid") from None
            return reply(await services.run_command(case_id, command))

        return await counted(spec.name, idempotency.idempotent(request, services.pool, caller, idempotency_key, act))

    run_command.__name__ = f"command_{spec.name}"
    # Annotations are strings here (postponed evaluation); this one is local, so give FastAPI the class.
    run_command.__annotations__["body"] = body_model
    router.post(
        f"/v1/escalations/{{case_id}}/{spec.route}",
        response_model=CommandReply,
        summary=f"{spec.route.replace('-', ' ').capitalize()} ({spec.command.__name__})",
        description=(spec.command.__doc__ or "").strip() or None,
        responses={
            403: {"description": "role not allowed"},
            404: {"description": "unknown case"},
            409: {"description": "not allowed in the current state (names the rule)"},
        },
    )(run_command)


for _spec in SPECS.values():
    _command_route(_spec)
