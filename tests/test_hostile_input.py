"""Hostile input over HTTP and over Temporal updates: every one is a 4xx (or a refused update) naming its rule,
and nothing is written. The limits tested here are the ones the README lists under "Limits"."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError

from api.app import MAX_BODY_BYTES
from tests.api_support import ApiStack, open_body, post
from workflows.client import case_handle
from workflows.core.vocabulary import Role

AGENT_ACTOR = {"id": "alice", "role": "agent"}


def raw(obj: object) -> bytes:
    return json.dumps(obj).encode()


def with_customer(**fields: object) -> dict:
    body = open_body()
    return {**body, "customer": {**body["customer"], **fields}}


# (name, path under the case or "open", raw body, expected status, expected rule)
HOSTILE_HTTP = [
    ("oversized body", "open", b'{"title": "' + b"a" * (MAX_BODY_BYTES + 1) + b'"}', 413, "request.too_large"),
    ("deeply nested array", "open", b'{"title": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, "request.unparseable"),
    ("deeply nested object", "open", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 400, "request.unparseable"),
    ("not UTF-8", "open", b'{"title": "\xff\xfe"}', 400, "request.unparseable"),
    ("not JSON", "open", b"hello", 422, "request.invalid"),
    ("a JSON array", "open", b"[1, 2, 3]", 422, "request.invalid"),
    ("empty body", "open", b"", 422, "request.invalid"),
    ("wrong type", "open", raw(open_body(severity=5)), 422, "request.invalid"),
    ("unknown field", "open", raw(open_body(colour="red")), 422, "request.invalid"),
    ("control character", "open", raw(open_body(title="bell\x07")), 422, "request.invalid"),
    ("NUL character", "open", raw(open_body(title="nul\x00")), 422, "request.invalid"),
    ("very long string", "open", raw(open_body(title="a" * 301)), 422, "request.invalid"),
    ("NaN number", "open", json.dumps(open_body()).replace('"250000"', "NaN").encode(), 422, "request.invalid"),
    ("number overflow", "open", json.dumps(open_body()).replace('"250000"', "1e400").encode(), 422, "request.invalid"),
    ("negative money", "open", raw(with_customer(annual_value="-1")), 422, "request.invalid"),
    ("note too long", "notes", raw({"text": "x" * 10_001, "visibility": "internal"}), 422, "request.invalid"),
    ("note of spaces", "notes", raw({"text": "   ", "visibility": "internal"}), 422, "request.invalid"),
    ("wrong type in command", "assign", raw({"owner": ["a", "b"]}), 422, "request.invalid"),
    ("unknown field in command", "acknowledge", raw({"force": True}), 422, "request.invalid"),
    ("actor smuggled in", "acknowledge", raw({"actor": {"id": "x", "role": "admin"}}), 422, "request.invalid"),
]


async def count_events(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM events")


@pytest.mark.parametrize(("name", "route", "body", "status", "rule"), HOSTILE_HTTP, ids=[h[0] for h in HOSTILE_HTTP])
async def test_hostile_http_bodies_are_refused_by_rule_and_write_nothing(
    served_stack: ApiStack, pool: asyncpg.Pool, name: str, route: str, body: bytes, status: int, rule: str
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        opened = await post(http, served_stack, "/v1/escalations", Role.AGENT, open_body())
        case_id = opened.json()["state"]["case_id"]
        path = "/v1/escalations" if route == "open" else f"/v1/escalations/{case_id}/{route}"
        before = await count_events(pool)
        headers = {**served_stack.headers(Role.MANAGER), "Content-Type": "application/json"}
        response = await http.post(served_stack.base_url + path, content=body, headers=headers)
        assert response.status_code == status, f"{name}: {response.status_code} {response.text[:300]}"
        problem = response.json()
        assert problem["rule"] == rule and problem["detail"], f"{name}: {problem}"
        assert response.headers["content-type"] == "application/problem+json"
        assert await count_events(pool) == before, f"{name}: something was written"


async def test_refusals_for_unknown_cases_routes_and_reused_keys(served_stack: ApiStack, pool: asyncpg.Pool) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        case_id = (await post(http, served_stack, "/v1/escalations", Role.AGENT, open_body())).json()["state"][
            "case_id"
        ]
        before = await count_events(pool)
        unknown_case = await post(http, served_stack, "/v1/escalations/c-no-such-case/acknowledge", Role.AGENT, {})
        assert (unknown_case.status_code, unknown_case.json()["rule"]) == (404, "case.unknown")
        unknown_route = await http.get(
            served_stack.base_url + "/v1/nothing-here", headers=served_stack.headers(Role.AGENT)
        )
        assert (unknown_route.status_code, unknown_route.json()["rule"]) == (404, "route.unknown")
        wrong_method = await http.delete(
            served_stack.base_url + "/v1/escalations", headers=served_stack.headers(Role.AGENT)
        )
        assert (wrong_method.status_code, wrong_method.json()["rule"]) == (405, "request.method_not_allowed")
        path = f"/v1/escalations/{case_id}/notes"
        first = await post(
            http, served_stack, path, Role.AGENT, {"text": "one", "visibility": "internal"}, "reused-key"
        )
        again = await post(
            http, served_stack, path, Role.AGENT, {"text": "two", "visibility": "internal"}, "reused-key"
        )
        assert first.status_code == 200
        assert (again.status_code, again.json()["rule"]) == (422, "idempotency.key_reused")
        # Had the API lost its record of the key (a crash before it was written), the case's own
        # record refuses the other body all the same.
        async with pool.acquire() as conn:
            assert await conn.execute("DELETE FROM api_idempotency WHERE key = $1", "reused-key") == "DELETE 1"
        note_two = {"text": "two", "visibility": "internal"}
        unremembered = await post(http, served_stack, path, Role.AGENT, note_two, "reused-key")
        assert (unremembered.status_code, unremembered.json()["rule"]) == (422, "idempotency.key_reused")
        assert await count_events(pool) == before + 1  # the first note only


HOSTILE_UPDATES = [
    ("deeply nested", "add_note", {"text": {"a": [[[[[[[[[[[["deep"]]]]]]]]]]]]}, "visibility": "internal"}),
    ("wrong type", "assign", {"owner": 12}),
    ("unknown field", "acknowledge", {"force": True}),
    ("control characters", "add_note", {"text": "line\x1b[2J", "visibility": "internal"}),
    ("very long string", "add_note", {"text": "x" * 1_000_000, "visibility": "internal"}),
    ("no actor", "acknowledge", {"actor": None}),
    ("not an object", "acknowledge", ["acknowledge"]),
]


@pytest.mark.parametrize(("name", "update", "fields"), HOSTILE_UPDATES, ids=[h[0] for h in HOSTILE_UPDATES])
async def test_hostile_temporal_updates_are_refused_by_rule_and_write_nothing(
    served_stack: ApiStack, pool: asyncpg.Pool, name: str, update: str, fields: object
) -> None:
    """Other services may call the workflow directly; its updates validate as strictly as the API."""
    async with httpx.AsyncClient(timeout=30) as http:
        case_id = (await post(http, served_stack, "/v1/escalations", Role.AGENT, open_body())).json()["state"][
            "case_id"
        ]
    before = await count_events(pool)
    payload = (
        {"actor": AGENT_ACTOR, "idempotency_key": f"hostile-{update}", "command": update, **fields}
        if isinstance(fields, dict)
        else fields
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case_handle(served_stack.client, case_id).execute_update(update, payload)
    assert 'rule "command.malformed"' in str(refused.value.cause), f"{name}: {refused.value.cause}"
    assert await count_events(pool) == before, f"{name}: something was written"
