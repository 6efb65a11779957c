"""Security: the services' database role cannot change events; every API route refuses a bad token; tokens are never logged."""

from __future__ import annotations

import logging
import re
import uuid

import asyncpg
import httpx
import pytest
import structlog

from api.app import create_app
from api.auth import create_token
from events.database import APP_ROLE, create_pool
from events.store import EventStore
from samples.cases import Case
from tests.api_support import ApiStack, open_body, post
from workflows.core.vocabulary import Role


async def test_the_services_role_can_read_and_append_events_but_never_change_them_even_without_the_triggers(
    own_db: tuple[asyncpg.Pool, str],
) -> None:
    pool, _ = own_db
    case = Case()
    await EventStore(pool).append(case.s.stream_id, 0, case.events)
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            # The owner drops the immutability triggers: only privileges are left to refuse.
            await conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
            await conn.execute(f"SET LOCAL ROLE {APP_ROLE}")
            assert await conn.fetchval("SELECT count(*) FROM events") == 1
            for statement in ("UPDATE events SET stream_id = 'x'", "DELETE FROM events", "TRUNCATE events"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    async with conn.transaction():  # a savepoint per refusal
                        await conn.execute(statement)
        finally:
            await transaction.rollback()  # the triggers come back with the rollback
        assert await conn.fetchval("SELECT count(*) FROM events") == 1
        with pytest.raises(asyncpg.PostgresError, match="append-only|immutable|not allowed|refuse"):
            await conn.execute("DELETE FROM events")  # and the owner is stopped by the trigger again


async def test_service_pools_work_as_the_restricted_role(own_db: tuple[asyncpg.Pool, str]) -> None:
    _, url = own_db
    pool = await create_pool(url, role=APP_ROLE, max_size=2)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT current_user") == APP_ROLE
        async with pool.acquire() as conn:  # still so after the pool's reset between uses
            assert await conn.fetchval("SELECT current_user") == APP_ROLE
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("DELETE FROM events")
    finally:
        await pool.close()


def v1_routes() -> list[tuple[str, str]]:
    """Every (method, path) the API serves under /v1, from the app itself (a new route is covered too)."""
    app = create_app(lambda: None)  # type: ignore[arg-type, return-value]
    routes = []
    for template, operations in app.openapi()["paths"].items():  # routers are included lazily: read the schema
        if template.startswith("/v1"):
            path = re.sub(r"\{[^}]+\}", "c-" + uuid.uuid4().hex[:8], template)
            routes += [(method.upper(), path) for method in sorted(operations)]
    return routes


async def test_every_route_refuses_a_missing_unknown_or_revoked_token(
    served_stack: ApiStack, pool: asyncpg.Pool
) -> None:
    revoked = await create_token(pool, f"revoked-{uuid.uuid4().hex[:6]}", Role.MANAGER)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE name LIKE 'revoked-%'")
    routes = v1_routes()
    assert len(routes) >= 10, routes
    attempts = {
        "auth.missing_token": {},
        "auth.bad_token": {"Authorization": "Bearer " + "x" * 43},
        "auth.revoked_token": {"Authorization": f"Bearer {revoked}"},
    }
    async with httpx.AsyncClient(timeout=30) as http:
        for method, path in routes:
            for rule, headers in attempts.items():
                response = await http.request(method, served_stack.base_url + path, headers=headers, json={})
                assert response.status_code == 401, f"{method} {path} with {rule}: {response.status_code}"
                # An acknowledgement link carries its own credential (a signed token in the path, for a person
                # who has no API token): whatever the header, a token the service did not sign is refused.
                expected = "ack_link.forged" if path.startswith("/v1/ack/") else rule.split(" ")[0]
                assert response.json()["rule"] == expected, f"{method} {path}: {response.text}"


async def test_tokens_never_reach_the_logs(served_stack: ApiStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + uuid.uuid4().hex
    with structlog.testing.capture_logs() as captured:
        async with httpx.AsyncClient(timeout=30) as http:
            await post(http, served_stack, "/v1/escalations", Role.AGENT, open_body())
            await post(http, served_stack, "/v1/escalations", Role.AGENT, {"not": "valid"})
            await http.get(served_stack.base_url + "/v1/escalations", headers={"Authorization": f"Bearer {wrong}"})
    logged = caplog.text + repr(captured)
    assert logged.strip(), "nothing was logged: the check would prove nothing"
    for token in [*served_stack.tokens.values(), wrong]:
        assert token not in logged
