"""Notifications over HTTP: each person's inbox, deliveries and dead letters (with re-drive), the one-click
acknowledgement links messages carry, and the executive digest.

* ``GET /v1/inbox`` is the caller's own (a person's token is named after their directory id), with the
  unread count; ``POST /v1/inbox/{id}/read`` marks one read.
* ``GET /v1/deliveries?status=dead`` lists deliveries with every attempt; ``POST /v1/deliveries/{id}/redrive``
  (managers, executives, admins; ``permission.redrive``) queues a dead one again, ``/v1/deliveries/redrive``
  every dead one.
* ``GET /v1/ack/{token}`` shows what the link does; ``POST`` records the acknowledgement as the person it was
  made for. A forged link is ``401 ack_link.forged``, an expired or used one ``410 ack_link.expired`` /
  ``ack_link.used``; none of them writes anything.
"""

from __future__ import annotations

import html
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse, Response

from api.auth import Principal
from api.dependencies import Caller, Reader, ServicesDep, role_gate
from api.errors import Problem
from api.routes.responses import json_response, reply
from projections import delivery
from projections.ack_links import LinkRefused
from projections.digest import executive_digest
from workflows.core.commands import Acknowledge
from workflows.core.directory import Person
from workflows.core.events import Actor
from workflows.core.vocabulary import Role

router = APIRouter(tags=["notifications"])
Token = Annotated[str, Path(max_length=2000, pattern=r"^[A-Za-z0-9_\-.]+$")]
REDRIVE_ROLES = frozenset({Role.MANAGER, Role.EXECUTIVE, Role.ADMIN})
# The role an acknowledgement by link is recorded with: the person's most senior staff role.
_STAFF_ORDER = (Role.EXECUTIVE, Role.MANAGER, Role.ADMIN, Role.AGENT)


Redriver = Annotated[Principal, Depends(role_gate(REDRIVE_ROLES, "permission.redrive", "re-drive deliveries"))]


@router.get("/v1/inbox")
async def inbox(
    caller: Caller, services: ServicesDep, unread: bool = False, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> Response:
    """The caller's notifications, newest first, and how many are unread."""
    rows = await services.pool.fetch(
        "SELECT delivery_id, case_id, kind, subject, text, created_at, read_at FROM inbox WHERE person = $1 "
        "AND (NOT $2 OR read_at IS NULL) ORDER BY created_at DESC, delivery_id LIMIT $3",
        caller.name,
        unread,
        limit,
    )
    count = await services.pool.fetchval(
        "SELECT count(*) FROM inbox WHERE person = $1 AND read_at IS NULL", caller.name
    )
    return json_response({"person": caller.name, "unread": count, "items": [dict(r) for r in rows]})


@router.post("/v1/inbox/{delivery_id}/read")
async def mark_read(delivery_id: uuid.UUID, caller: Caller, services: ServicesDep) -> Response:
    found = await services.pool.fetchval(
        "UPDATE inbox SET read_at = coalesce(read_at, now()) WHERE delivery_id = $1 AND person = $2 RETURNING delivery_id",
        delivery_id,
        caller.name,
    )
    if found is None:
        raise Problem(404, "Not Found", f"no notification {delivery_id} in your inbox", rule="inbox.unknown")
    return json_response({"delivery_id": str(found), "read": True})


@router.get("/v1/deliveries")
async def deliveries(
    reader: Reader,
    services: ServicesDep,
    status: Literal["pending", "delivered", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """Deliveries, newest first, each with every attempt (when, outcome, error); ``status=dead``: dead letters."""
    return json_response({"deliveries": await delivery.deliveries(services.pool, status=status, limit=limit)})


@router.post("/v1/deliveries/redrive")
async def redrive_all(redriver: Redriver, services: ServicesDep) -> Response:
    """Queue every dead letter again, due now."""
    return json_response({"redriven": await delivery.redrive(services.pool)})


@router.post("/v1/deliveries/{delivery_id}/redrive")
async def redrive_one(delivery_id: uuid.UUID, redriver: Redriver, services: ServicesDep) -> Response:
    """Queue one dead letter again, due now (404 ``delivery.not_dead`` unless it is dead)."""
    if not await delivery.redrive(services.pool, str(delivery_id)):
        raise Problem(404, "Not Found", f"no dead delivery {delivery_id}", rule="delivery.not_dead")
    return json_response({"redriven": 1})


@router.get("/v1/digest/executive")
async def digest(
    reader: Reader, services: ServicesDep, hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24
) -> Response:
    """The executive digest composed now over the last ``hours``: open P1/P2 cases with their next deadlines,
    breaches in the period, accounts at risk with their annual value, new systemic issues."""
    now = datetime.now(UTC)
    async with services.pool.acquire() as conn:
        return json_response(await executive_digest(conn, now - timedelta(hours=hours), now))


@router.get("/v1/digest/executive/latest")
async def latest_digest(reader: Reader, services: ServicesDep) -> Response:
    """The last digest the schedule composed (404 ``digest.none`` before the first)."""
    row = await services.pool.fetchrow(
        "SELECT composed_at, period_start, digest FROM executive_digests ORDER BY id DESC LIMIT 1"
    )
    if row is None:
        raise Problem(404, "Not Found", "the schedule has composed no digest yet", rule="digest.none")
    return json_response(
        {"composed_at": row["composed_at"], "period_start": row["period_start"], "digest": json.loads(row["digest"])}
    )


def _verified(services: ServicesDep, token: str):  # noqa: ANN202
    if services.links is None:
        raise Problem(401, "Unauthorized", "acknowledgement links are not enabled here", rule="ack_link.forged")
    try:
        return services.links.verify(token)
    except LinkRefused as exc:
        raise Problem(exc.status, "Unauthorized" if exc.status == 401 else "Gone", exc.message, rule=exc.rule) from None


@router.get("/v1/ack/{token}", response_class=HTMLResponse)
async def ack_page(token: Token, services: ServicesDep) -> HTMLResponse:
    """What the link does, and a button that does it (a link prefetched by a mail scanner writes nothing)."""
    claims = _verified(services, token)
    used = await services.pool.fetchval("SELECT outcome FROM ack_link_uses WHERE nonce = $1", claims.nonce)
    case, person = html.escape(claims.case_id), html.escape(claims.person)
    body = (
        f"<p>This link was used already ({html.escape(used)}).</p>"
        if used
        else f'<form method="post"><button type="submit">Acknowledge case {case} as {person}</button></form>'
    )
    return HTMLResponse(f"<!doctype html><title>Acknowledge {case}</title><h1>Case {case}</h1>{body}")


@router.post("/v1/ack/{token}")
async def ack(token: Token, services: ServicesDep) -> Response:
    """Acknowledge the link's case as the link's person; the link is spent by its first use."""
    claims = _verified(services, token)
    doc = await services.directory.get("people", claims.person)
    person = Person.model_validate(doc) if doc else None
    if person is None:
        raise Problem(403, "Forbidden", f"{claims.person!r} is not in the directory", rule="ack_link.unknown_person")
    # A person with no role of their own is staff the policy named as a responder: an agent.
    role = next((r for r in _STAFF_ORDER if r in person.roles), None if person.roles else Role.AGENT)
    if role is None:
        roles = ", ".join(r.value for r in person.roles)
        raise Problem(
            403, "Forbidden", f"{claims.person!r} ({roles}) may not acknowledge", rule="permission.acknowledge"
        )
    spent = await services.pool.fetchval(
        "INSERT INTO ack_link_uses (nonce, case_id, person, outcome) VALUES ($1, $2, $3, 'pending') "
        "ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
        claims.nonce,
        claims.case_id,
        claims.person,
    )
    if spent is None:
        raise Problem(410, "Gone", "this link was used already", rule="ack_link.used")
    command = Acknowledge(actor=Actor(id=claims.person, role=role), idempotency_key=f"ack-link-{claims.nonce}")
    try:
        outcome = await services.run_command(claims.case_id, command)
    except Problem as exc:
        if exc.status >= 500:  # not an answer: the link stays usable (the command's key makes a retry safe)
            await services.pool.execute("DELETE FROM ack_link_uses WHERE nonce = $1", claims.nonce)
        else:
            await services.pool.execute(
                "UPDATE ack_link_uses SET outcome = $2 WHERE nonce = $1", claims.nonce, exc.rule
            )
        raise
    except BaseException:
        await services.pool.execute("DELETE FROM ack_link_uses WHERE nonce = $1", claims.nonce)
        raise
    await services.pool.execute("UPDATE ack_link_uses SET outcome = 'acknowledged' WHERE nonce = $1", claims.nonce)
    return reply(outcome)
