"""Auditors' guarantees: tampering is found (by chain and by digest), and as-of replays the past."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from events.store import EventStore
from projections.audit import check_digest, export_csv, export_jsonl, make_digest, state_as_of, verify_all
from samples.cases import MANAGER, command, open_command
from samples.histories import append_history, generate_case
from tests.tampering import tamper
from tests.temporal_fixtures import running_worker
from workflows.client import send_command
from workflows.core.case_view import case_view
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


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


async def test_verify_reports_the_case_and_version_of_a_single_changed_byte(own_db, tmp_path: Path) -> None:
    pool, url = own_db
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


async def test_a_saved_digest_detects_a_change_even_when_the_chain_was_recomputed(own_db, tmp_path: Path) -> None:
    pool, url = own_db
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


async def test_exports_carry_every_event(own_db) -> None:
    pool, _ = own_db
    [history] = [generate_case(random.Random(2), 0)]
    await append_history(EventStore(pool), [history])
    events = await EventStore(pool).read_stream(history[0].stream_id)
    lines = export_jsonl(await EventStore(pool).read_stored(history[0].stream_id)).splitlines()
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
            as_of = await state_as_of(store, case_id, at)
            assert as_of is not None and case_view(as_of) == state
        assert await state_as_of(store, case_id, events[0].occurred_at.replace(year=2000)) is None
