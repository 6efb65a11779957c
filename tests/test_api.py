"""The HTTP API over real HTTP against the real stack: lifecycle, every route, every role, errors, idempotency."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from api.models import COMMAND_ROUTES
from api.services import Services
from events.store import EventStore
from tests.api_support import API_POLICY, ApiStack, open_body, post, serving
from tests.eventually import assert_eventually
from tests.net import free_port
from workflows.core.commands import PERMISSIONS
from workflows.core.events import stream_id_for
from workflows.core.vocabulary import Role
from workflows.policy_files import load_policy

pytestmark = pytest.mark.timeout(120)
A, M, E, S, AU, AD = Role.AGENT, Role.MANAGER, Role.EXECUTIVE, Role.SERVICE, Role.AUDITOR, Role.ADMIN


def new_case_id() -> str:
    return f"api-{uuid.uuid4().hex[:10]}"


async def open_case(http: httpx.AsyncClient, stack: ApiStack, **overrides: object) -> str:
    case_id = new_case_id()
    response = await post(http, stack, "/v1/escalations", S, open_body(case_id, **overrides))
    assert response.status_code == 201, response.text
    return case_id


async def command(
    http, stack, case_id: str, route: str, role: Role, body: dict | None = None, status: int = 200
) -> dict:  # noqa: ANN001
    response = await post(http, stack, f"/v1/escalations/{case_id}/{route}", role, body or {})
    assert response.status_code == status, f"{route} as {role.value}: {response.status_code} {response.text}"
    return response.json()


async def test_a_case_lives_its_whole_life_over_http(stack: ApiStack, http: httpx.AsyncClient) -> None:
    response = await post(http, stack, "/v1/escalations", S, open_body(new_case_id()))
    assert response.status_code == 201 and response.headers["location"].startswith("/v1/escalations/")
    case_id = response.json()["state"]["case_id"]
    assert response.json()["events"][0]["data"]["type"] == "escalation.opened"
    run = lambda route, role, body=None, status=200: command(http, stack, case_id, route, role, body, status)  # noqa: E731
    await run("assign", A, {"owner": "bob"})
    await run("acknowledge", A)
    await run("notes", A, {"text": "Rolled back to 41", "visibility": "executive_update"})
    await run("request-escalation", S, {"reason": "customer asked for a director", "wanted_level": 3})
    declined = await run("decline-escalation", M, {"reason": "fix is in progress"})
    assert declined["state"]["declined_requests"] == 1
    await run("escalate", A, {"reason": "needs a director"})
    await run("de-escalate", M, {"reason": "stable again"})
    await run("pause", A, {"reason": "waiting_on_customer", "note": "logs requested"})
    await run("resume", A)
    await run("change-priority", M, {"to_priority": "P2", "reason": "workaround available"})
    await run(
        "propose-resolution",
        A,
        {
            "summary": "Fixed the gateway timeout.",
            "root_cause": "configuration",
            "root_cause_text": "timeout too low",
            "compensation": {"kind": "credit", "amount": "2500"},
        },
    )
    await run("decide-compensation", M, {"approved": True})
    await run("sign-off", E)
    rejected = await run("customer-response", A, {"accepted": False, "comment": "still slow"})
    assert rejected["state"]["status"] == "in_progress"
    await run(
        "propose-resolution",
        A,
        {"summary": "Raised the timeout.", "root_cause": "configuration", "root_cause_text": "t"},
    )
    await run("sign-off", M)
    resolved = await run("customer-response", A, {"accepted": True})
    assert resolved["state"]["status"] == "resolved"
    get = lambda path, role=AU: http.get(stack.base_url + path, headers=stack.headers(role))  # noqa: E731
    await assert_eventually(
        lambda: get(f"/v1/escalations/{case_id}"), lambda r: r.json().get("follow_up_due_at") is not None
    )
    await run("follow-up", A, {"satisfaction": 4, "comment": "good"})
    await run("close", A, {"note": "done"})
    reopened = await run("reopen", A, {"reason": "came back"})
    assert reopened["state"]["reopen_count"] == 1
    withdrawn = await run("withdraw", M, {"reason": "duplicate", "note": "see other case"})
    assert withdrawn["state"]["status"] == "withdrawn"

    state = (await get(f"/v1/escalations/{case_id}")).json()
    events = await EventStore(stack.pool).read_stream(stream_id_for(case_id))
    assert state["version"] == len(events)
    # The actor on every event is the identity of the token that sent the command.
    assert events[0].actor.role == Role.SERVICE and events[0].actor.id.startswith("service-")
    assert events[1].actor.role == Role.AGENT and events[1].actor.id.startswith("agent-")
    audit = (await get(f"/v1/escalations/{case_id}/audit")).json()
    assert [e["version"] for e in audit["events"]] == list(range(1, len(events) + 1))
    at = events[2].occurred_at.isoformat()
    past = (
        await http.get(
            stack.base_url + f"/v1/escalations/{case_id}/audit", params={"as_of": at}, headers=stack.headers(AU)
        )
    ).json()
    assert past["state"]["version"] == 3
    jsonl = await http.get(
        stack.base_url + f"/v1/escalations/{case_id}/audit", params={"format": "jsonl"}, headers=stack.headers(AU)
    )
    assert len(jsonl.text.splitlines()) == len(events)
    csv = await http.get(
        stack.base_url + f"/v1/escalations/{case_id}/audit", params={"format": "csv"}, headers=stack.headers(AU)
    )
    assert csv.headers["content-type"].startswith("text/csv") and len(csv.text.splitlines()) == len(events) + 1
    assert (await get(f"/v1/escalations/{case_id}/verify")).json() == {
        "case_id": case_id,
        "events": len(events),
        "ok": True,
        "broken": None,
    }
    assert stream_id_for(case_id) in (await get("/v1/audit/digest")).json()["streams"]
    listed = await assert_eventually(
        lambda: get("/v1/escalations?customer_id=acme&status=withdrawn"),
        lambda r: any(i["case_id"] == case_id for i in r.json()["items"]),
    )
    assert listed.status_code == 200
    counted = (await get("/v1/metrics")).json()
    assert counted["cases"] + counted["withdrawn"] >= 1 and counted["withdrawn"] >= 1  # this one, withdrawn
    assert "systemic_issues" in (await get("/v1/systemic-issues")).json()
    assert (await http.get(stack.base_url + "/healthz")).json() == {"status": "ok"}
    ready = await http.get(stack.base_url + "/readyz")
    checks = ready.json()["checks"]
    assert ready.status_code == 200 and {k: checks[k] for k in ("postgresql", "projections", "temporal")} == {
        "postgresql": "ok",
        "projections": "ok",
        "temporal": "ok",
    }
    # The API test policy names webhook targets this stack does not configure: reported, not fatal.
    assert "level 1 notifies 'webhook:support', not configured" in checks["notifications"]


SAMPLE_BODIES = {
    "acknowledge": {},
    "assign": {"owner": "zed"},
    "notes": {"text": "hi"},
    "escalate": {},
    "request-escalation": {"reason": "r"},
    "decline-escalation": {"reason": "r"},
    "de-escalate": {"reason": "r"},
    "pause": {"reason": "waiting_on_customer"},
    "resume": {},
    "change-priority": {"to_priority": "P3", "reason": "r"},
    "propose-resolution": {"summary": "s", "root_cause": "other", "root_cause_text": "t"},
    "decide-compensation": {"approved": True},
    "sign-off": {},
    "customer-response": {"accepted": True},
    "follow-up": {"satisfaction": 3},
    "close": {},
    "reopen": {"reason": "r"},
    "withdraw": {"reason": "invalid"},
    # A hash that matches no content: refused by its rule (409/422) once the role is allowed.
    "change-policy": {"mode": "keep", "policy_hash": "0" * 64, "policy": {}, "reason": "r"},
    "signals": {"signal": {"kind": "usage_drop", "value": 0.5}},
    "correct-facts": {"reason": "r", "title": "Checkout down (corrected)"},
}


async def test_every_role_is_allowed_exactly_the_commands_of_the_permission_table(
    stack: ApiStack, http: httpx.AsyncClient
) -> None:
    case_id = await open_case(http, stack)
    for route, name in COMMAND_ROUTES.items():
        for role in (A, M, E, S, AU, AD):
            response = await post(http, stack, f"/v1/escalations/{case_id}/{route}", role, SAMPLE_BODIES[route])
            allowed = role in PERMISSIONS[name]
            if allowed:
                assert response.status_code != 403, f"{role.value} {route}: {response.text}"
            else:
                assert response.status_code == 403, f"{role.value} {route}: {response.status_code} {response.text}"
                assert response.json()["rule"] == f"permission.{name}"
                assert response.headers["content-type"] == "application/problem+json"
    opened_as_auditor = await post(http, stack, "/v1/escalations", AU, open_body(new_case_id()))
    assert opened_as_auditor.status_code == 403 and opened_as_auditor.json()["rule"] == "permission.open"
    for role in (A, M, E, S, AU, AD):
        assert (
            await http.get(f"{stack.base_url}/v1/escalations/{case_id}", headers=stack.headers(role))
        ).status_code == 200


async def test_errors_are_problems_that_name_their_rule(stack: ApiStack, http: httpx.AsyncClient) -> None:
    base = stack.base_url
    no_token = await http.get(f"{base}/v1/escalations")
    assert no_token.status_code == 401 and no_token.json()["rule"] == "auth.missing_token"
    bad_token = await http.get(f"{base}/v1/escalations", headers={"Authorization": "Bearer esc_nope"})
    assert bad_token.status_code == 401 and bad_token.json()["rule"] == "auth.bad_token"
    unknown = await http.get(f"{base}/v1/escalations/nope-{uuid.uuid4().hex[:6]}", headers=stack.headers(A))
    assert unknown.status_code == 404 and unknown.json()["rule"] == "case.unknown"
    unknown_cmd = await post(http, stack, f"/v1/escalations/nope-{uuid.uuid4().hex[:6]}/acknowledge", A, {})
    assert unknown_cmd.status_code == 404
    case_id = await open_case(http, stack)
    before = len(await EventStore(stack.pool).read_stream(stream_id_for(case_id)))
    wrong_state = await post(http, stack, f"/v1/escalations/{case_id}/close", A, {})
    assert wrong_state.status_code == 409 and wrong_state.json()["rule"] == "close.not_resolved"
    malformed = await post(http, stack, f"/v1/escalations/{case_id}/assign", A, {"owner": 12, "colour": "red"})
    assert malformed.status_code == 422
    fields = {e["field"] for e in malformed.json()["errors"]}
    assert fields == {"owner", "colour"}
    missing = await post(http, stack, f"/v1/escalations/{case_id}/pause", A, {})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "reason"
    huge = await post(http, stack, f"/v1/escalations/{case_id}/notes", A, {"text": "x" * 100_000})
    assert huge.status_code == 413 and huge.json()["rule"] == "request.too_large"
    not_json = await http.post(
        f"{base}/v1/escalations/{case_id}/notes",
        content=b"{not json",
        headers={**stack.headers(A), "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    assert len(await EventStore(stack.pool).read_stream(stream_id_for(case_id))) == before


async def test_retrying_with_the_same_key_writes_nothing_twice_even_after_a_restart(
    stack: ApiStack, http: httpx.AsyncClient
) -> None:
    key = f"open-{uuid.uuid4().hex}"
    body = open_body()  # no case_id: derived from the key
    first = await post(http, stack, "/v1/escalations", S, body, key)
    again = await post(http, stack, "/v1/escalations", S, body, key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and again.headers["location"] == first.headers["location"]
    case_id = first.json()["state"]["case_id"]
    other = await post(http, stack, "/v1/escalations", S, open_body(title="Something else"), key)
    assert other.status_code == 422 and other.json()["rule"] == "idempotency.key_reused"
    note_key = f"note-{uuid.uuid4().hex}"
    noted = await post(http, stack, f"/v1/escalations/{case_id}/notes", A, {"text": "once"}, note_key)
    # A second API process over the same database honours the same keys.
    services = Services(
        pool=stack.pool,
        client=stack.client,
        policy=load_policy(API_POLICY),
        task_queue=stack.task_queue,
    )
    async with serving(services, free_port()) as other_base, httpx.AsyncClient(timeout=30) as network:
        replay = await network.post(
            f"{other_base}/v1/escalations/{case_id}/notes", json={"text": "once"}, headers=stack.headers(A, note_key)
        )
        reopen = await network.post(f"{other_base}/v1/escalations", json=body, headers=stack.headers(S, key))
    assert replay.status_code == 200 and replay.json() == noted.json()
    assert reopen.status_code == 201 and reopen.json() == first.json()
    events = await EventStore(stack.pool).read_stream(stream_id_for(case_id))
    assert [e.type for e in events] == ["escalation.opened", "escalation.note_added"]


async def test_unreachable_dependencies_are_503_not_500(database_url: str) -> None:
    from temporalio.client import Client

    from workflows.data_converter import data_converter

    dead_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await dead_pool.close()
    dead_temporal = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, data_converter=data_converter)
    services = Services(pool=dead_pool, client=dead_temporal, policy=load_policy(API_POLICY), task_queue="nowhere")
    async with serving(services, free_port()) as base, httpx.AsyncClient(timeout=30) as http:
        ready = await http.get(f"{base}/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"
        assert (await http.get(f"{base}/healthz")).status_code == 200
        opened = await http.post(f"{base}/v1/escalations", json=open_body(), headers={"Authorization": "Bearer esc_x"})
        assert opened.status_code == 503 and opened.json()["rule"] == "dependency.unavailable"


async def test_a_long_idempotency_key_is_accepted_and_an_unprintable_one_refused(
    stack: ApiStack, http: httpx.AsyncClient
) -> None:
    long_key = "k" * 200
    first = await post(http, stack, "/v1/escalations", S, open_body(), long_key)
    assert first.status_code == 201, first.text
    assert (await post(http, stack, "/v1/escalations", S, open_body(), long_key)).json() == first.json()
    bad = await http.post(
        f"{stack.base_url}/v1/escalations", json=open_body(), headers={**stack.headers(S), "Idempotency-Key": "k" * 201}
    )
    assert bad.status_code == 422 and bad.json()["rule"] == "idempotency.invalid_key"


async def test_fifty_racing_acknowledges_one_wins_and_the_rest_are_refused_by_rule(served_stack: ApiStack) -> None:
    """Over real connections (the subject is concurrency at the server)."""
    import asyncio

    stack = served_stack
    async with httpx.AsyncClient(timeout=30) as http:
        case_id = await open_case(http, stack)
    path = f"/v1/escalations/{case_id}/acknowledge"
    # Several connections, so the requests really overlap at the server.
    clients = [httpx.AsyncClient(timeout=60) for _ in range(10)]
    try:
        replies = await asyncio.gather(
            *(post(clients[i % 10], stack, path, A, {}, f"race-{i}-{uuid.uuid4().hex}") for i in range(50))
        )
    finally:
        for client in clients:
            await client.aclose()
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] + [409] * 49, [
        (
            r.request.headers["Idempotency-Key"],
            r.json()["duplicate"],
            [(e["data"]["type"], e["command_key"], e["version"]) for e in r.json()["events"]],
        )
        for r in replies
        if r.status_code != 409
    ]
    assert {r.json()["rule"] for r in replies if r.status_code == 409} == {"acknowledge.not_open"}
    events = await EventStore(stack.pool).read_stream(stream_id_for(case_id))
    assert [e.type for e in events].count("escalation.acknowledged") == 1


async def test_an_opening_key_reused_after_its_reply_expired_is_still_refused_for_another_body(
    stack: ApiStack, http: httpx.AsyncClient
) -> None:
    """The API's replay record of a reply expires; the case's own record (its opening event's key and digest)
    does not: the key sent again with another body is refused, with the same body it gets the same case."""
    key = f"open-{uuid.uuid4().hex}"
    first = await post(http, stack, "/v1/escalations", S, open_body(), key)
    assert first.status_code == 201, first.text
    case_id = first.json()["state"]["case_id"]
    expired = await stack.pool.execute("DELETE FROM api_idempotency WHERE key = $1", key)  # as the purge does
    assert expired == "DELETE 1"
    other = await post(http, stack, "/v1/escalations", S, open_body(title="Something else"), key)
    assert other.status_code == 422 and other.json().get("rule") == "idempotency.key_reused", other.text
    same = await post(http, stack, "/v1/escalations", S, open_body(), key)
    assert same.status_code == 201 and same.json()["state"]["case_id"] == case_id, same.text
    assert len(await EventStore(stack.pool).read_stream(stream_id_for(case_id))) == 1
