"""The API's own logic, in process (httpx.ASGITransport): no server, no database, no Temporal."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from api import dependencies
from api.app import create_app
from api.services import Services
from samples.cases import DEFAULT_POLICY


@pytest.fixture
async def asgi() -> AsyncIterator[httpx.AsyncClient]:
    services = Services(pool=None, client=None, policy=DEFAULT_POLICY, task_queue="unused")  # type: ignore[arg-type]
    app = create_app(services)
    app.state.services = services  # ASGITransport runs no lifespan
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


async def test_a_token_postgresql_refuses_as_bytes_is_a_bad_token_not_an_outage(
    asgi: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuses(pool: object, token: str) -> None:
        raise asyncpg.exceptions.CharacterNotInRepertoireError('invalid byte sequence for encoding "UTF8": 0x00')

    monkeypatch.setattr(dependencies, "authenticate", refuses)
    response = await asgi.get("/v1/me", headers={"Authorization": "Bearer esc_bad"})
    assert response.status_code == 401 and response.json()["rule"] == "auth.bad_token"


async def test_a_value_postgresql_refuses_in_a_read_is_the_callers_bad_input(
    asgi: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.auth import Principal
    from projections import queries
    from workflows.core.vocabulary import Role

    async def reader(pool: object, token: str) -> Principal:
        return Principal(name="audrey", role=Role.AUDITOR)

    class Pool:
        def acquire(self) -> Pool:
            return self

        async def __aenter__(self) -> object:
            return object()

        async def __aexit__(self, *exc: object) -> None:
            return None

    async def refused(*args: object, **kwargs: object) -> None:
        raise asyncpg.exceptions.DataError("invalid input for query argument $1: 'x' (out of range)")

    monkeypatch.setattr(dependencies, "authenticate", reader)
    monkeypatch.setattr(queries, "list_cases", refused)
    asgi_app = asgi._transport.app  # type: ignore[attr-defined]  # noqa: SLF001
    asgi_app.state.services = Services(pool=Pool(), client=None, policy=DEFAULT_POLICY, task_queue="unused")  # type: ignore[arg-type]
    response = await asgi.get("/v1/escalations", headers={"Authorization": "Bearer esc_ok"})
    assert response.status_code == 422 and response.json()["rule"] == "request.invalid_value"
