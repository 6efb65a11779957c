"""API tokens, for admins: list, create (optionally expiring), revoke, rotate. A token is shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, create_token, list_tokens, revoke_token, rotate_token
from api.dependencies import ServicesDep, role_gate
from api.errors import Problem
from api.routes.responses import json_response
from workflows.core.events import Identifier
from workflows.core.vocabulary import Role

router = APIRouter(tags=["auth"])
TokenName = Annotated[str, Path(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


Admin = Annotated[Principal, Depends(role_gate(frozenset({Role.ADMIN}), "permission.tokens", "manage tokens"))]


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Identifier
    role: Role
    expires_at: datetime | None = Field(None, description="when it stops working (with a time zone); never if null")


@router.get("/v1/tokens")
async def tokens(admin: Admin, services: ServicesDep) -> Response:
    """Every token, live and past (never the token itself)."""
    return json_response({"tokens": [vars(t) for t in await list_tokens(services.pool)]})


@router.post("/v1/tokens", status_code=201)
async def new_token(body: NewToken, admin: Admin, services: ServicesDep) -> Response:
    """Create a token; the reply is the only time it is shown."""
    try:
        token = await create_token(services.pool, body.name, body.role, expires_at=body.expires_at)
    except ValueError as exc:
        raise Problem(422, "Invalid Request", str(exc), rule="tokens.invalid") from None
    return json_response({"name": body.name, "role": body.role.value, "token": token}, 201)


@router.post("/v1/tokens/{name}/revoke")
async def revoke(name: TokenName, admin: Admin, services: ServicesDep) -> Response:
    """Revoke the name's live token at once: its next request is refused with ``auth.revoked_token``."""
    try:
        await revoke_token(services.pool, name)
    except LookupError as exc:
        raise Problem(404, "Not Found", str(exc), rule="tokens.unknown") from None
    return json_response({"name": name, "revoked": True})


@router.post("/v1/tokens/{name}/rotate")
async def rotate(name: TokenName, admin: Admin, services: ServicesDep) -> Response:
    """Replace the name's live token with a new one (same role and expiry); the old one stops working."""
    try:
        token = await rotate_token(services.pool, name)
    except LookupError as exc:
        raise Problem(404, "Not Found", str(exc), rule="tokens.unknown") from None
    except ValueError as exc:
        raise Problem(409, "Conflict", str(exc), rule="tokens.expired") from None
    return json_response({"name": name, "token": token})
