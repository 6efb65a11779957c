"""A real API server (uvicorn on a free local port) over the real stack, with a token per role."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from api.app import create_app
from api.auth import TOKEN_ROLES, create_token
from api.server import _Server
from api.services import Services
from projections import all_projections
from projections.runner import Projector
from tests.net import free_port
from tests.temporal_fixtures import running_worker
from workflows.core.vocabulary import Role
from workflows.policy_files import load_policy

API_POLICY = Path(__file__).resolve().parent / "policies" / "api.toml"
IN_PROCESS_URL = "http://api.in-process"


def asgi_client(stack: ApiStack) -> httpx.AsyncClient:
    """An HTTP client for ``stack``: through ASGI when the API runs in process, over the network otherwise."""
    if stack.app is not None:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app), base_url=stack.base_url, timeout=30)
    return httpx.AsyncClient(timeout=30)


@dataclass
class ApiStack:
    base_url: str
    tokens: dict[Role, str]
    pool: asyncpg.Pool
    client: Client
    task_queue: str
    app: FastAPI | None = None  # set when the API runs in process (no server; reach it with ``asgi_client``)

    def headers(self, role: Role, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        if key:
            headers["Idempotency-Key"] = key
        return headers


@contextlib.asynccontextmanager
async def serving(services: Services, port: int) -> AsyncIterator[str]:
    server = _Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def api_stack(
    client: Client, pool: asyncpg.Pool, database_url: str, policy_path: Path = API_POLICY, *, served: bool = True
) -> AsyncIterator[ApiStack]:
    """Worker (API test policy unless told), projector and API, all on this test's own task queue.

    ``served``: the API behind a real HTTP server (where HTTP itself is the subject: browsers, curl,
    other processes, connection-level faults); otherwise in process, reached through ASGI."""
    policy = load_policy(policy_path)
    # The API has a pool of its own, as in production (another process): a burst of requests
    # must not starve the worker's appends.
    api_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
    suffix = uuid.uuid4().hex[:8]
    tokens = {role: await create_token(pool, f"{role.value}-{suffix}", role) for role in TOKEN_ROLES}
    stop = asyncio.Event()
    projector = asyncio.create_task(Projector(pool, all_projections(), poll_interval=0.2).run(stop))
    try:
        async with running_worker(client, pool, policy) as cases:
            services = Services(pool=api_pool, client=client, policy=policy, task_queue=cases.task_queue)
            if not served:
                app = create_app(services)
                app.state.services = services  # ASGITransport runs no lifespan
                yield ApiStack(IN_PROCESS_URL, tokens, pool, client, cases.task_queue, app)
                return
            async with serving(services, free_port()) as base_url:
                yield ApiStack(base_url, tokens, pool, client, cases.task_queue)
    finally:
        stop.set()
        await projector
        await api_pool.close()


def open_body(case_id: str | None = None, **overrides: object) -> dict:
    body = {
        "customer": {"id": "acme", "name": "ACME Corp", "tier": "strategic", "annual_value": "250000"},
        "category": "technical",
        "lifecycle_stage": "ongoing_support",
        "severity": "sev1",
        "title": "Checkout down",
        "description": "Customers cannot pay since the last release.",
        "source": "customer",
    }
    if case_id:
        body["case_id"] = case_id
    body.update(overrides)
    return body


async def post(
    http: httpx.AsyncClient, stack: ApiStack, path: str, role: Role, body: dict, key: str | None = None
) -> httpx.Response:
    return await http.post(stack.base_url + path, json=body, headers=stack.headers(role, key))
