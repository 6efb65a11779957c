"""Erasure by crypto-shredding: after it, a customer's personal texts are unreadable through every read path,
and every proof made before and after still verifies.

A real worker, projector and API (the API test policy seals free texts and contact names). The personal
text is unique to the test, so "nowhere" can be checked literally: in every reply, every command's output,
and every row of every table of the database.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from events import transparency_log
from events.log_keys import write_new_key
from events.store import EventStore
from projections import all_projections
from projections.runner import Projector
from samples.histories import generate_case
from tests.api_support import ApiStack, open_body, post
from tests.cli_support import cli, offline
from tests.eventually import assert_eventually
from workflows.core.events import case_id_of, stream_id_for
from workflows.core.personal_data import ERASED
from workflows.core.vocabulary import Role

ROOT = Path(__file__).resolve().parent.parent
VERIFIER = ROOT / "scripts" / "verify_bundle.py"


async def _tables_holding(pool: asyncpg.Pool, text: str) -> list[str]:
    """Every table of the database with a row whose text form holds ``text``."""
    async with pool.acquire() as conn:
        tables = [
            r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return [
            t for t in tables if await conn.fetchval(f'SELECT count(*) FROM "{t}" x WHERE x::text LIKE $1', f"%{text}%")
        ]


async def test_erasing_a_customer_leaves_no_readable_trace_and_every_proof_holds(
    stack: ApiStack, http: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    secret = f"Jane-{uuid.uuid4().hex[:8]}"
    customer = f"cust-erase-{uuid.uuid4().hex[:6]}"
    case_id = f"erase-{uuid.uuid4().hex[:8]}"
    body = open_body(
        case_id,
        customer={"id": customer, "name": "ACME Corp", "tier": "strategic", "contact": f"{secret} Smith"},
        description=f"{secret} Smith reports that checkout fails for her team.",
    )
    opened = await post(http, stack, "/v1/escalations", Role.SERVICE, body, key=f"open-{case_id}")
    assert opened.status_code == 201, opened.text
    noted = await post(
        http,
        stack,
        f"/v1/escalations/{case_id}/notes",
        Role.AGENT,
        {"text": f"Called {secret} on +1 555 0100", "visibility": "internal"},
    )
    assert noted.status_code == 200, noted.text
    pool = stack.pool

    async def audit_rows() -> int:
        async with pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM audit_trail WHERE case_id = $1", case_id)

    await assert_eventually(audit_rows, lambda n: n >= 2)
    # Before: readable through the API, but sealed at rest (the events table never holds the text).
    view = (await http.get(f"{stack.base_url}/v1/escalations/{case_id}", headers=stack.headers(Role.AUDITOR))).json()
    assert view["customer"]["contact"] == f"{secret} Smith"
    timeline = await http.get(f"{stack.base_url}/v1/escalations/{case_id}/audit", headers=stack.headers(Role.AUDITOR))
    assert f"Called {secret}" in timeline.text
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE body LIKE $1", f"%{secret}%") == 0

    # An auditor saves a checkpoint and exports the case before the erasure.
    key_file = tmp_path / "log-key"
    signer = write_new_key(key_file, "erasure.test/log")
    async with pool.acquire() as conn:
        await transparency_log.catch_up(conn)
        before_checkpoint = await transparency_log.sign(conn, signer)
    assert before_checkpoint is not None
    saved = tmp_path / "saved.checkpoint"
    saved.write_text(before_checkpoint.note)
    before_bundle = tmp_path / "before.bundle.json"
    assert cli(database_url, "export", case_id, "-o", before_bundle, key_file=key_file).returncode == 0

    refused = await post(http, stack, "/v1/erasures", Role.MANAGER, {"customer_id": customer, "reason": "GDPR art. 17"})
    assert refused.status_code == 403 and refused.json()["rule"] == "permission.erase"
    erased = await post(
        http, stack, "/v1/erasures", Role.ADMIN, {"customer_id": customer, "reason": "GDPR art. 17 request 42"}
    )
    assert erased.status_code == 201, erased.text
    assert erased.json()["case_ids"] == [case_id]
    again = await post(http, stack, "/v1/erasures", Role.ADMIN, {"customer_id": customer, "reason": "again"})
    assert again.status_code == 409 and again.json()["rule"] == "erase.nothing_to_erase"

    # The case goes on; its reply and every read shows the texts erased.
    acked = await post(http, stack, f"/v1/escalations/{case_id}/acknowledge", Role.AGENT, {})
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"]["customer"]["contact"] == ERASED and secret not in acked.text
    read_as = stack.headers(Role.AUDITOR)
    replies = [
        await http.get(f"{stack.base_url}/v1/escalations/{case_id}", headers=read_as),
        await http.get(f"{stack.base_url}/v1/escalations/{case_id}/audit", headers=read_as),
        await http.get(f"{stack.base_url}/v1/escalations/{case_id}/audit", params={"format": "csv"}, headers=read_as),
        await http.get(f"{stack.base_url}/v1/escalations/{case_id}/audit", params={"format": "jsonl"}, headers=read_as),
        await http.get(f"{stack.base_url}/v1/escalations/{case_id}/bundle", headers=read_as),
        await http.get(f"{stack.base_url}/v1/escalations", params={"customer_id": customer}, headers=read_as),
        await http.get(f"{stack.base_url}/v1/inbox", headers=stack.headers(Role.AGENT)),
        await http.get(f"{stack.base_url}/v1/erasures", params={"customer_id": customer}, headers=read_as),
    ]
    for reply in replies:
        assert secret not in reply.text, f"{reply.request.url}: {reply.text[:300]}"
    assert replies[0].json()["customer"]["contact"] == ERASED
    assert ERASED in replies[1].text  # the timeline shows where the texts were
    for command in (["show", case_id], ["audit", case_id], ["audit", case_id, "--format", "jsonl"], ["erasures"]):
        done = cli(database_url, *command)
        assert done.returncode == 0, done.stderr
        assert secret not in done.stdout + done.stderr, command

    # No table of the database holds the text any more, and a read model rebuilt from scratch does not bring
    # it back.
    await Projector(pool, all_projections()).catch_up()
    assert await _tables_holding(pool, secret) == []
    for read_model in ("audit_trail", "case_list"):
        rebuilt = cli(database_url, "rebuild", read_model)
        assert rebuilt.returncode == 0, rebuilt.stderr
    assert await _tables_holding(pool, secret) == []

    # Every proof holds: the chains, the bundle exported before, and one exported after against the
    # checkpoint saved before.
    assert cli(database_url, "verify", case_id).returncode == 0
    vkey = signer.vkey()
    checked = offline("verify-bundle", before_bundle, "--key", vkey, "--checkpoint", saved)
    assert checked.returncode == 0, checked.stdout
    after_bundle = tmp_path / "after.bundle.json"
    exported = cli(
        database_url, "export", case_id, "-o", after_bundle, "--since", str(before_checkpoint.size), key_file=key_file
    )
    assert exported.returncode == 0, exported.stderr
    assert secret not in after_bundle.read_text()
    checked = offline("verify-bundle", after_bundle, "--key", vkey, "--checkpoint", saved)
    assert checked.returncode == 0, checked.stdout
    assert (
        json.loads(after_bundle.read_text())["events"][0]["body"]
        == json.loads(before_bundle.read_text())["events"][0]["body"]
    )
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream_id_for(case_id))
    assert stored >= 3


async def test_erasure_from_the_shell_redacts_delivered_messages_and_a_tampered_envelope_is_reported(
    own_db, tmp_path: Path
) -> None:
    pool, url = own_db
    secret = f"Jane-{uuid.uuid4().hex[:8]}"
    history = generate_case(random.Random(3), 0)
    opening = history[0]
    customer = opening.data.customer.model_copy(update={"contact": f"{secret} Smith"})
    data = opening.data.model_copy(update={"customer": customer, "description": f"{secret} has no checkout"})
    history[0] = opening.model_copy(update={"data": data})
    await EventStore(pool).append(opening.stream_id, 0, history)
    await Projector(pool, all_projections()).catch_up()
    async with pool.acquire() as conn:
        # A notification already sent carried the opening event's data, as webhooks do.
        await conn.execute(
            "INSERT INTO deliveries (id, event_id, case_id, kind, recipient, channel, priority, message, created_at, "
            "next_attempt_at, give_up_at) VALUES ($1, $2, $3, 'case_opened', 'webhook:crm', 'webhook', 'P1', $4, now(), "
            "now(), now())",
            uuid.uuid4(),
            opening.event_id,
            case_id_of(opening.stream_id),
            json.dumps({"subject": "opened", "event": {"data": json.loads(data.model_dump_json())}}),
        )
    # Readable copies before the erasure: the case list's fold and the message; the events hold it sealed.
    assert sorted(await _tables_holding(pool, secret)) == ["case_list_folds", "deliveries"]

    refused = cli(url, "erase", "--customer", customer.id, "--reason", "request 7", "--as", "agent:amy")
    assert refused.returncode == 3 and "permission.erase" in refused.stderr
    done = cli(url, "erase", "--customer", customer.id, "--reason", "request 7", "--as", "admin:dpo")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["case_ids"] == [case_id_of(opening.stream_id)]
    assert await _tables_holding(pool, secret) == []
    listed = cli(url, "erasures", "--customer", customer.id)
    assert json.loads(listed.stdout)["actor_id"] == "dpo" and json.loads(listed.stdout)["reason"] == "request 7"
    again = cli(url, "erase", "--customer", customer.id, "--reason", "request 7", "--as", "admin:dpo")
    assert again.returncode == 3 and "erase.nothing_to_erase" in again.stderr
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError, match="erased stays erased"):
            await conn.execute(
                "UPDATE personal_data_keys SET key = $2, erased_at = NULL WHERE subject = $1", customer.id, b"k" * 32
            )

    # A sealed field altered at rest is reported as a corrupt event, not shown and not a crash.
    second = generate_case(random.Random(4), 1)
    await EventStore(pool).append(second[0].stream_id, 0, second)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        await conn.execute(
            'UPDATE events SET body = regexp_replace(body, \'\\{"sealed":\\{"data":"(.)\', \'{"sealed":{"data":"A\') '
            "WHERE stream_id = $1 AND version = 1",
            second[0].stream_id,
        )
        await conn.execute("ALTER TABLE events ENABLE TRIGGER USER")
    shown = cli(url, "show", case_id_of(second[0].stream_id))
    assert shown.returncode == 1 and "store.corrupt_event" in shown.stderr and "does not open" in shown.stderr
