"""Auditors' guarantees: tampering is found (by chain and by digest), and as-of replays the past."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore, chain_hash
from projections.audit import check_digest, export_csv, export_jsonl, make_digest, state_as_of, verify_all
from samples.cases import MANAGER, command, open_command
from samples.histories import append_history, generate_case
from tests.projection_support import fresh_pool
from tests.temporal_fixtures import running_worker
from workflows.client import send_command
from workflows.core.commands import (
    Acknowledge,
    AddNote,
    AssignOwner,
    ChangePriority,
    Pause,
    ProposeResolution,
    RecordCustomerResponse,
    Resume,
    SignOff,
)
from workflows.core.events import case_id_of, stream_id_for
from workflows.core.policy import Policy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def iso_db(server_dsn: str) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async for pool, url in fresh_pool(server_dsn):
        yield pool, url


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


async def tamper(pool: asyncpg.Pool, stream_id: str, version: int, *, rechain: bool = False) -> None:
    """Flip one byte of a stored event as a superuser would, bypassing the append-only guard."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
        body = await conn.fetchval("SELECT body FROM events WHERE stream_id = $1 AND version = $2", stream_id, version)
        index = body.index('"occurred_at":"') + len('"occurred_at":"') + 3  # a digit of the year
        flipped = body[:index] + ("7" if body[index] != "7" else "8") + body[index + 1 :]
        await conn.execute(
            "UPDATE events SET body = $3 WHERE stream_id = $1 AND version = $2", stream_id, version, flipped
        )
        if rechain:
            # A cleverer forger also recomputes every later hash so the chain looks whole.
            rows = await conn.fetch(
                "SELECT version, body, prev_hash FROM events WHERE stream_id = $1 ORDER BY version", stream_id
            )
            prev = rows[0]["prev_hash"]
            for row in rows:
                new_hash = chain_hash(prev, row["body"])
                await conn.execute(
                    "UPDATE events SET prev_hash = $3, hash = $4 WHERE stream_id = $1 AND version = $2",
                    stream_id,
                    row["version"],
                    prev,
                    new_hash,
                )
                prev = new_hash
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")


async def test_verify_reports_the_case_and_version_of_a_single_changed_byte(iso_db, tmp_path: Path) -> None:
    pool, url = iso_db
    rng = random.Random(5)
    histories = [generate_case(rng, i) for i in range(12)]
    await append_history(EventStore(pool), histories)
    assert cli(url, "verify").returncode == 0
    victim = histories[4]
    stream, version = victim[0].stream_id, len(victim) // 2 + 1
    await tamper(pool, stream, version)
    done = cli(url, "verify")
    case_id = case_id_of(stream)
    assert done.returncode == 1
    assert f"BROKEN case {case_id} version {version}: hash does not match the stored bytes" in done.stdout
    assert cli(url, "verify", case_id).returncode == 1
    assert cli(url, "verify", case_id_of(histories[0][0].stream_id)).returncode == 0


async def test_a_saved_digest_detects_a_change_even_when_the_chain_was_recomputed(iso_db, tmp_path: Path) -> None:
    pool, url = iso_db
    rng = random.Random(9)
    histories = [generate_case(rng, i) for i in range(8)]
    await append_history(EventStore(pool), histories)
    digest_file = tmp_path / "digest.json"
    assert cli(url, "digest", "-o", str(digest_file)).returncode == 0
    # Later events do not disturb the digest: it covers what existed when it was taken.
    await append_history(EventStore(pool), [generate_case(rng, 99)])
    assert cli(url, "verify", "--digest", str(digest_file)).returncode == 0
    stream = histories[2][0].stream_id
    await tamper(pool, stream, 1, rechain=True)
    _, _, breaks = await verify_all(pool)
    assert breaks == []  # the forged chain is internally consistent...
    done = cli(url, "verify", "--digest", str(digest_file))
    assert done.returncode == 1  # ...but not with the saved heads
    assert f"{stream} version {len(histories[2])}: head hash differs from the saved digest" in done.stdout
    saved = json.loads(digest_file.read_text())
    saved["streams"][stream]["hash"] = "0" * 64
    assert any("digest file itself was altered" in p for p in await check_digest(pool, saved))


async def test_exports_carry_every_event(iso_db) -> None:
    pool, _ = iso_db
    [history] = [generate_case(random.Random(2), 0)]
    await append_history(EventStore(pool), [history])
    events = await EventStore(pool).read_stream(history[0].stream_id)
    lines = export_jsonl(events).splitlines()
    assert [json.loads(line)["hash"] for line in lines] == [e.hash for e in events]
    csv_rows = export_csv(events).splitlines()
    assert len(csv_rows) == len(events) + 1 and csv_rows[0].startswith("version,position")
    digest = await make_digest(pool)
    assert digest["streams"][history[0].stream_id]["version"] == len(events)


async def test_as_of_gives_the_state_the_workflow_reported_at_every_event_boundary(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, policy: Policy, store: EventStore
) -> None:
    async with running_worker(dev_env.client, pool, policy) as cases:
        opening = open_command()
        await cases.open(opening)
        case_id = opening.case_id
        steps = [
            command(AssignOwner, owner="bob"),
            command(Acknowledge),
            command(AddNote, text="Looking at the logs"),
            command(Pause, reason="waiting_on_customer"),
            command(Resume),
            command(ChangePriority, actor=MANAGER, to_priority="P2", reason="workaround in place"),
            command(
                ProposeResolution, summary="Rolled back", root_cause="product_defect", root_cause_text="release 42"
            ),
            command(SignOff, actor=MANAGER),
            command(RecordCustomerResponse, accepted=True),
        ]
        reported = []
        for step in steps:
            result = await send_command(dev_env.client, case_id, step)
            reported.append((result.events[-1].occurred_at, result.state))
        events = await store.read_stream(stream_id_for(case_id))
        first = await state_as_of(store, case_id, events[0].occurred_at)
        assert first is not None and first.version == 1 and first.status == "open"
        for at, state in reported:
            assert await state_as_of(store, case_id, at) == state
        assert await state_as_of(store, case_id, events[0].occurred_at.replace(year=2000)) is None
