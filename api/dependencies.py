"""What routes depend on: the services, the caller (from the bearer token), and the shared path/query types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, Header, Path, Query, Request

from api.auth import Principal, TokenRefused, authenticate
from api.errors import Problem, unavailable
from api.services import Services
from workflows.core.events import CASE_ID_PATTERN
from workflows.core.permissions import READ_ROLES
from workflows.core.vocabulary import Role

CasePath = Annotated[str, Path(pattern=CASE_ID_PATTERN, description="the case id")]
SearchText = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


def services(request: Request) -> Services:
    return request.app.state.services


async def principal(
    request: Request, authorization: Annotated[str | None, Header(description="Bearer <token>")] = None
) -> Principal:
    """The caller: 401 ``auth.missing_token``, ``auth.bad_token``, ``auth.revoked_token`` or
    ``auth.expired_token`` unless the bearer token is known and live."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <token>", rule="auth.missing_token")
    try:
        caller = await authenticate(services(request).pool, authorization[7:].strip())
    except TokenRefused as exc:
        raise Problem(401, "Unauthorized", str(exc), rule=exc.rule) from None
    except asyncpg.DataError:
        # The token itself is bad input (bytes PostgreSQL refuses), not a database outage.
        raise Problem(401, "Unauthorized", "the bearer token is unknown or revoked", rule="auth.bad_token") from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise unavailable("PostgreSQL", exc) from None
    request.state.token_name = caller.name  # the access log names the token, never shows it
    return caller


async def reader(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """A caller whose role may read (403 ``permission.read`` otherwise)."""
    if caller.role not in READ_ROLES:
        raise Problem(403, "Forbidden", f"role {caller.role.value!r} may not read", rule="permission.read")
    return caller


Caller = Annotated[Principal, Depends(principal)]


def role_gate(allowed: frozenset[Role], rule: str, action: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A route dependency (``Depends(role_gate(...))``) admitting callers whose role is in ``allowed``; others
    get 403 ``rule`` saying what they may not do and who may."""

    async def gate(caller: Caller) -> Principal:
        if caller.role not in allowed:
            roles = ", ".join(sorted(r.value for r in allowed))
            raise Problem(403, "Forbidden", f"role {caller.role.value!r} may not {action}; allowed: {roles}", rule=rule)
        return caller

    return gate


Reader = Annotated[Principal, Depends(reader)]
ServicesDep = Annotated[Services, Depends(services)]
