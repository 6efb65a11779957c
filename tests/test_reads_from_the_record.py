"""Reads of a case come from the event store: they outlive the workflow, report tampering instead of
crashing, and an export can be verified away from the database, byte for byte."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore
from samples.histories import append_history, generate_case
from tests.api_support import ApiStack, api_stack, asgi_client, open_body, post
from tests.eventually import assert_eventually
from tests.tampering import rewrite_body, tamper
from workflows.client import case_handle
from workflows.core.events import case_id_of
from workflows.core.vocabulary import Role

ROOT = Path(__file__).resolve().parent.parent
VERIFIER = ROOT / "scripts" / "verify_export.py"
pytestmark = pytest.mark.timeout(120)


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "ESCALATIONS_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def verify_export(text: str) -> subprocess.CompletedProcess:
    # -I: isolated mode, no site-packages and not this project: the verifier stands on the standard library.
    return subprocess.run(
        [sys.executable, "-I", str(VERIFIER), "-"], input=text, capture_output=True, text=True, timeout=60
    )


async def test_a_case_is_read_from_the_store_after_its_workflow_is_gone(
    stack: ApiStack, http: httpx.AsyncClient, database_url: str
) -> None:
    case_id = f"gone-{uuid.uuid4().hex[:8]}"
    opened = await post(http, stack, "/v1/escalations", Role.SERVICE, open_body(case_id))
    assert opened.status_code == 201, opened.text
    acked = await post(http, stack, f"/v1/escalations/{case_id}/acknowledge", Role.AGENT, {})
    assert acked.status_code == 200, acked.text
    await case_handle(stack.client, case_id).terminate(reason="as if Temporal's retention had deleted it")

    read = await http.get(f"{stack.base_url}/v1/escalations/{case_id}", headers=stack.headers(Role.AUDITOR))
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "in_progress" and read.json()["version"] == 2
    assert "policy" not in read.json() and read.json()["deadlines"], "a view, with its deadlines computed"
    offered = await http.get(f"{stack.base_url}/v1/escalations/{case_id}/commands", headers=stack.headers(Role.AGENT))
    assert offered.status_code == 200 and "assign" in [c["name"] for c in offered.json()["commands"]]
    refused = await post(http, stack, f"/v1/escalations/{case_id}/assign", Role.AGENT, {"owner": "bob"})
    assert refused.status_code == 409 and refused.json()["rule"] == "case.finished"
    shown = cli(database_url, "show", case_id)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "in_progress"


async def test_a_case_whose_workflow_the_server_never_had_is_read_from_the_store(
    stack: ApiStack, http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """Written to the store directly, as a case whose history the server deleted long ago."""
    [history] = [generate_case(random.Random(uuid.uuid4().int), 0)]
    await append_history(EventStore(pool), [history])
    case_id = case_id_of(history[0].stream_id)
    headers = stack.headers(Role.AUDITOR)
    read = await http.get(f"{stack.base_url}/v1/escalations/{case_id}", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json()["version"] == len(history)
    offered = await http.get(f"{stack.base_url}/v1/escalations/{case_id}/commands", headers=headers)
    assert offered.status_code == 200
    verified = await http.get(f"{stack.base_url}/v1/escalations/{case_id}/verify", headers=headers)
    assert verified.json()["ok"] is True


async def test_an_event_whose_bytes_no_longer_parse_is_a_chain_break_everywhere_never_a_500(
    dev_env: WorkflowEnvironment, own_db: tuple[asyncpg.Pool, str]
) -> None:
    pool, database_url = own_db  # a database of its own: the damaged event stops its projector only
    histories = [generate_case(random.Random(uuid.uuid4().int), i) for i in range(2)]
    await append_history(EventStore(pool), histories)
    stream = histories[1][0].stream_id
    case_id = case_id_of(stream)
    await rewrite_body(pool, stream, 1, lambda body: body.replace('"type":"escalation.opened"', '"type":"forged"'))
    async with api_stack(dev_env.client, pool, database_url, served=False) as stack, asgi_client(stack) as http:
        await _check_the_damage_is_reported(stack, http, database_url, case_id, undamaged=histories[0])


async def _check_the_damage_is_reported(
    stack: ApiStack, http: httpx.AsyncClient, database_url: str, case_id: str, undamaged: list
) -> None:
    headers = stack.headers(Role.AUDITOR)
    ready = await assert_eventually(
        lambda: http.get(f"{stack.base_url}/readyz"), lambda r: r.json()["checks"]["projections"] != "ok"
    )
    assert ready.status_code == 503
    assert "case_list stopped" in ready.json()["checks"]["projections"]
    assert "store.corrupt_event" in ready.json()["checks"]["projections"]
    # The events before the damaged one were projected; the projector stopped at it.
    listed = await http.get(f"{stack.base_url}/v1/escalations?limit=500", headers=headers)
    assert case_id_of(undamaged[0].stream_id) in [i["case_id"] for i in listed.json()["items"]]

    verified = await http.get(f"{stack.base_url}/v1/escalations/{case_id}/verify", headers=headers)
    assert verified.status_code == 200, verified.text
    assert verified.json()["ok"] is False
    assert verified.json()["broken"] == {"version": 1, "reason": "hash does not match the stored bytes"}
    for path in (
        f"/v1/escalations/{case_id}",
        f"/v1/escalations/{case_id}/commands",
        f"/v1/escalations/{case_id}/audit",
    ):
        read = await http.get(stack.base_url + path, headers=headers)
        assert read.status_code == 409, f"{path}: {read.status_code} {read.text}"
        assert read.json()["rule"] == "store.corrupt_event" and read.json()["version"] == 1
    exported = await http.get(f"{stack.base_url}/v1/escalations/{case_id}/audit?format=jsonl", headers=headers)
    assert exported.status_code == 200
    assert verify_export(exported.text).returncode == 1

    for args in (("verify", case_id), ("verify",)):
        done = cli(database_url, *args)
        assert done.returncode == 1, done.stderr
        assert f"BROKEN case {case_id} version 1: hash does not match the stored bytes" in done.stdout
        assert "Traceback" not in done.stderr
    shown = cli(database_url, "show", case_id)
    assert shown.returncode == 1 and "store.corrupt_event" in shown.stderr and "Traceback" not in shown.stderr


async def test_an_export_verifies_with_the_standard_library_alone_and_fails_on_any_changed_byte(
    own_db: tuple[asyncpg.Pool, str],
) -> None:
    pool, url = own_db
    histories = [generate_case(random.Random(11), i) for i in range(3)]
    await append_history(EventStore(pool), histories)
    case_id = case_id_of(histories[1][0].stream_id)
    exported = cli(url, "audit", case_id, "--format", "jsonl")
    assert exported.returncode == 0, exported.stderr
    done = verify_export(exported.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"OK: 1 streams, {len(histories[1])} events" in done.stdout

    lines = exported.stdout.splitlines()
    rng = random.Random(3)
    for _ in range(25):
        number = rng.randrange(len(lines))
        line = json.loads(lines[number])
        field = rng.choice(["body", "hash", "prev_hash"])
        position = rng.randrange(len(line[field]))
        original = line[field][position]
        line[field] = line[field][:position] + ("1" if original != "1" else "2") + line[field][position + 1 :]
        changed = [*lines[:number], json.dumps(line), *lines[number + 1 :]]
        broken = verify_export("\n".join(changed) + "\n")
        assert broken.returncode == 1, f"{field}[{position}] changed on line {number + 1}: {broken.stdout}"
        assert f"version {json.loads(lines[number])['version']}" in broken.stdout
    dropped = verify_export("\n".join(lines[:1] + lines[2:]) + "\n")
    assert dropped.returncode == 1 and "gap: expected version 2" in dropped.stdout


async def test_a_tampered_event_the_forger_rechained_still_verifies_in_the_export_as_stored(
    own_db: tuple[asyncpg.Pool, str],
) -> None:
    """The export is the stored bytes: a forgery with recomputed hashes exports as a whole chain, which is
    why a saved digest (or a signed checkpoint) is the auditor's second check."""
    pool, url = own_db
    [history] = [generate_case(random.Random(4), 0)]
    await append_history(EventStore(pool), [history])
    await tamper(pool, history[0].stream_id, 1, rechain=True)
    exported = cli(url, "audit", case_id_of(history[0].stream_id), "--format", "jsonl")
    assert exported.returncode == 0 and verify_export(exported.stdout).returncode == 0


def test_the_cli_answers_an_unreachable_temporal_with_its_exit_status_and_one_line(database_url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
        "ESCALATIONS_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "act", "no-such-case", "acknowledge"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    unknown = cli(database_url, "show", "no-such-case")
    assert unknown.returncode == 4 and "no case 'no-such-case'" in unknown.stderr and "Traceback" not in unknown.stderr
