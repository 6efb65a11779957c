"""What routes depend on: the services, the caller (from the bearer token), and the shared path/query types."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Path, Query, Request

from api.auth import Principal, authenticate
from api.errors import Problem, unavailable
from api.services import Services
from workflows.core.events import CASE_ID_PATTERN
from workflows.core.permissions import READ_ROLES

CasePath = Annotated[str, Path(pattern=CASE_ID_PATTERN, description="the case id")]
SearchText = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def services(request: Request) -> Services:
    return request.app.state.services


async def principal(
    request: Request, authorization: Annotated[str | None, Header(description="Bearer <token>")] = None
) -> Principal:
    """The caller: 401 ``auth.missing_token`` / ``auth.bad_token`` unless the bearer token is known."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <token>", rule="auth.missing_token")
    try:
        found = await authenticate(services(request).pool, authorization[7:].strip())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise unavailable("PostgreSQL", exc) from None
    if found is None:
        raise Problem(401, "Unauthorized", "the bearer token is unknown or revoked", rule="auth.bad_token")
    return found


async def reader(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """A caller whose role may read (403 ``permission.read`` otherwise)."""
    if caller.role not in READ_ROLES:
        raise Problem(403, "Forbidden", f"role {caller.role.value!r} may not read", rule="permission.read")
    return caller


Caller = Annotated[Principal, Depends(principal)]
Reader = Annotated[Principal, Depends(reader)]
ServicesDep = Annotated[Services, Depends(services)]
