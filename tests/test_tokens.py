"""Tokens are managed: listed, revoked, rotated and expiring, over the CLI and (for admins) the API; a
revoked or expired token is refused with its own rule. In process: the API's logic over the database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.app import create_app
from api.auth import create_token
from api.services import Services
from samples.cases import DEFAULT_POLICY
from workflows.core.vocabulary import Role

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    services = Services(pool=pool, client=None, policy=DEFAULT_POLICY, task_queue="unused")  # type: ignore[arg-type]
    app = create_app(services)
    app.state.services = services  # ASGITransport runs no lifespan
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_an_admin_creates_rotates_and_revokes_tokens_and_each_refusal_names_its_rule(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    suffix = uuid.uuid4().hex[:8]
    admin = await create_token(pool, f"admin-{suffix}", Role.ADMIN)
    agent = await create_token(pool, f"agent-{suffix}", Role.AGENT)
    refused = await api.get("/v1/tokens", headers=bearer(agent))
    assert refused.status_code == 403 and refused.json()["rule"] == "permission.tokens"

    made = await api.post("/v1/tokens", json={"name": f"crm-{suffix}", "role": "service"}, headers=bearer(admin))
    assert made.status_code == 201, made.text
    crm = made.json()["token"]
    assert (await api.get("/v1/me", headers=bearer(crm))).json()["role"] == "service"
    twice = await api.post("/v1/tokens", json={"name": f"crm-{suffix}", "role": "service"}, headers=bearer(admin))
    assert twice.status_code == 422 and twice.json()["rule"] == "tokens.invalid"

    rotated = await api.post(f"/v1/tokens/crm-{suffix}/rotate", headers=bearer(admin))
    assert rotated.status_code == 200
    new = rotated.json()["token"]
    old = await api.get("/v1/me", headers=bearer(crm))
    assert old.status_code == 401 and old.json()["rule"] == "auth.revoked_token"
    assert (await api.get("/v1/me", headers=bearer(new))).status_code == 200

    assert (await api.post(f"/v1/tokens/crm-{suffix}/revoke", headers=bearer(admin))).status_code == 200
    gone = await api.get("/v1/me", headers=bearer(new))
    assert gone.status_code == 401 and gone.json()["rule"] == "auth.revoked_token"
    again = await api.post(f"/v1/tokens/crm-{suffix}/revoke", headers=bearer(admin))
    assert again.status_code == 404 and again.json()["rule"] == "tokens.unknown"
    listed = (await api.get("/v1/tokens", headers=bearer(admin))).json()["tokens"]
    history = [t for t in listed if t["name"] == f"crm-{suffix}"]
    assert len(history) == 2 and all(t["revoked_at"] for t in history)
    assert all("token" not in t and "token_hash" not in t for t in listed)
    unknown = await api.get("/v1/me", headers=bearer("esc_nothing"))
    assert unknown.status_code == 401 and unknown.json()["rule"] == "auth.bad_token"


async def test_an_expired_token_is_refused_with_its_rule(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    name = f"brief-{uuid.uuid4().hex[:8]}"
    token = await create_token(pool, name, Role.AUDITOR, expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert (await api.get("/v1/me", headers=bearer(token))).status_code == 200
    async with pool.acquire() as conn:
        await conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = $1", name)
    expired = await api.get("/v1/me", headers=bearer(token))
    assert expired.status_code == 401 and expired.json()["rule"] == "auth.expired_token"
    admin = await create_token(pool, f"admin-{name}", Role.ADMIN)
    stale = await api.post(f"/v1/tokens/{name}/rotate", headers=bearer(admin))
    assert stale.status_code == 409 and stale.json()["rule"] == "tokens.expired"
    fresh = await api.post("/v1/tokens", json={"name": name, "role": "auditor"}, headers=bearer(admin))
    assert fresh.status_code == 201, fresh.text  # an expired token no longer holds its name


def test_the_cli_lists_rotates_and_revokes(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "ESCALATIONS_LOG_LEVEL": "WARNING"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", "token", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )

    name = f"ops-{uuid.uuid4().hex[:8]}"
    made = cli("create", "--role", "manager", "--name", name, "--expires-in-days", "30")
    assert made.returncode == 0 and made.stdout.startswith("esc_"), made.stderr
    rotated = cli("rotate", name)
    assert rotated.returncode == 0 and rotated.stdout.strip() != made.stdout.strip()
    assert cli("revoke", name).returncode == 0
    missing = cli("revoke", name)
    assert missing.returncode == 4 and "no live token" in missing.stderr and "Traceback" not in missing.stderr
    listed = cli("list")
    rows = [line for line in listed.stdout.splitlines() if line.startswith(name)]
    assert len(rows) == 2 and all(" revoked " in row for row in rows)
