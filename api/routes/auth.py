"""Who the caller is."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.dependencies import Caller
from api.routes.responses import json_response
from workflows.core.commands import PERMISSIONS, SPECS
from workflows.core.permissions import READ_ROLES

router = APIRouter(tags=["auth"])


@router.get("/v1/me")
async def me(caller: Caller) -> Response:
    """Who the token belongs to, its role, and the commands that role may run at all."""
    offered = {"open", *SPECS}
    return json_response(
        {
            "name": caller.name,
            "role": caller.role.value,
            "may_read": caller.role in READ_ROLES,
            "commands": [name for name, roles in PERMISSIONS.items() if caller.role in roles and name in offered],
        }
    )
