"""The transparency log in PostgreSQL, case bundles and the offline verifier, against a forger with the database.

Each forgery below is done as a superuser would (the append-only triggers disabled), and in the worst case:
the forger also rebuilds the log tables and has the log re-sign the forged tree with the real key. An auditor
holding a checkpoint saved before the forgery still catches it, offline, with ``scripts/verify_bundle.py``
run in isolated mode (it can import nothing of the project).
"""

from __future__ import annotations

import ast
import asyncio
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

from api.app import create_app
from api.auth import create_token
from api.services import Services
from events import transparency_log
from events.log_keys import LogSigner, write_new_key
from events.store import EventStore
from projections.log_keeper import FAULT_NAME, LogKeeper
from samples.cases import DEFAULT_POLICY
from samples.histories import append_history, generate_case
from scripts.verify_bundle import (
    Checkpoint,
    VerifierKey,
    consistency_verifies,
    inclusion_verifies,
    leaf_hash,
    root_of,
    verify_bundle,
)
from tests.cli_support import keyed_cli, offline
from tests.eventually import assert_eventually
from tests.tampering import tamper
from tests.test_readme_session import readme_session
from workflows.core.events import case_id_of
from workflows.core.vocabulary import Role

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "verify_bundle.py"


async def _disable_guards(conn: asyncpg.Connection, *tables: str) -> None:
    for table in tables:
        await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")


async def _enable_guards(conn: asyncpg.Connection, *tables: str) -> None:
    for table in tables:
        await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


async def forge_log(pool: asyncpg.Pool, signer: LogSigner, *, drop_checkpoints: bool = True) -> None:
    """What a forger with the database and the signing process does after rewriting events: empty the log
    (and its checkpoints) and have it rebuilt and re-signed over the forged events."""
    tables = ("log_leaves", "log_nodes", "log_checkpoints") if drop_checkpoints else ("log_leaves", "log_nodes")
    async with pool.acquire() as conn:
        async with conn.transaction():
            await _disable_guards(conn, *tables)
            for table in tables:
                await conn.execute(f"DELETE FROM {table}")
            await _enable_guards(conn, *tables)
        await transparency_log.catch_up(conn)
        if drop_checkpoints:
            await transparency_log.sign(conn, signer)


@pytest.fixture
def signer(tmp_path: Path) -> tuple[LogSigner, Path]:
    path = tmp_path / "log-key"
    return write_new_key(path, "log.test/escalations"), path


async def _record(pool: asyncpg.Pool, seed: int, cases: int) -> list[list]:
    histories = [generate_case(random.Random(seed * 1000 + i), seed * 1000 + i) for i in range(cases)]
    await append_history(EventStore(pool), histories)
    return histories


async def _save_checkpoint(pool: asyncpg.Pool, signer: LogSigner, path: Path) -> int:
    async with pool.acquire() as conn:
        await transparency_log.catch_up(conn)
        signed = await transparency_log.sign(conn, signer)
    assert signed is not None
    path.write_text(signed.note)
    return signed.size


async def test_the_stored_log_is_the_rfc_tree_of_the_events_and_proofs_verify_offline(
    own_db, signer, tmp_path: Path
) -> None:
    pool, url = own_db
    key, key_file = signer
    histories = await _record(pool, 1, 8)
    async with pool.acquire() as conn:
        while await transparency_log.extend(conn, limit=7):  # small batches: every frontier case is crossed
            pass
        hashes = [r["hash"] for r in await conn.fetch("SELECT hash FROM events ORDER BY position")]
        size, _ = await transparency_log.log_size(conn)
        assert size == len(hashes)
        assert await transparency_log.root(conn, size) == root_of([leaf_hash(bytes.fromhex(h)) for h in hashes])
        assert (await transparency_log.recompute(conn)).agrees
    saved = tmp_path / "saved.checkpoint"
    saved_size = await _save_checkpoint(pool, key, saved)
    assert offline("verify-checkpoint", saved, "--key", key.vkey()).returncode == 0

    later = await _record(pool, 2, 5)
    async with pool.acquire() as conn:
        await transparency_log.catch_up(conn)
        assert (await transparency_log.recompute(conn)).agrees
    victim = case_id_of(histories[3][0].stream_id)
    bundle = tmp_path / "case.bundle.json"
    done = keyed_cli(url, key_file, "export", victim, "-o", bundle, "--since", saved_size)
    assert done.returncode == 0, done.stderr
    content = json.loads(bundle.read_text())
    assert len(content["events"]) == len(histories[3])
    # A bundle names no other case: the proofs are hashes only.
    text = bundle.read_text()
    for other in histories + later:
        if other is not histories[3]:
            assert case_id_of(other[0].stream_id) not in text
    checked = offline("verify-bundle", bundle, "--key", key.vkey(), "--checkpoint", saved)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"OK {victim}: {len(histories[3])} events" in checked.stdout

    newer = tmp_path / "newer.json"
    assert keyed_cli(url, key_file, "log", "consistency", saved_size, "-o", newer).returncode == 0
    consistent = offline("verify-consistency", saved, newer, "--key", key.vkey())
    assert consistent.returncode == 0, consistent.stdout
    assert keyed_cli(url, key_file, "log", "recompute").returncode == 0


def _exchange(a: asyncpg.Record, b: asyncpg.Record) -> list[tuple]:
    columns = ("stream_id", "version", "event_id", "event_type", "body", "prev_hash", "hash", "recorded_at")
    return [(a["position"], *[b[c] for c in columns]), (b["position"], *[a[c] for c in columns])]


async def _swap_two_events(pool: asyncpg.Pool) -> None:
    """Exchange the places of two events of different cases in the global order (each chain still links)."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("SELECT * FROM events WHERE version = 1 ORDER BY position LIMIT 2")
        await _disable_guards(conn, "events")
        await conn.execute(
            "UPDATE events SET stream_id = 'swap-' || position, event_id = gen_random_uuid() WHERE position = ANY($1)",
            [r["position"] for r in rows],
        )
        await conn.executemany(
            "UPDATE events SET stream_id = $2, version = $3, event_id = $4, event_type = $5, body = $6, prev_hash = $7, "
            "hash = $8, recorded_at = $9 WHERE position = $1",
            _exchange(rows[0], rows[1]),
        )
        await _enable_guards(conn, "events")


async def _delete_last_event(pool: asyncpg.Pool, stream_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _disable_guards(conn, "events")
        await conn.execute(
            "DELETE FROM events WHERE stream_id = $1 AND version = (SELECT max(version) FROM events WHERE stream_id = $1)",
            stream_id,
        )
        await _enable_guards(conn, "events")


async def _refill(pool: asyncpg.Pool, histories: list[list]) -> None:
    """Truncate the events and append a consistently re-chained history with one case left out."""
    async with pool.acquire() as conn, conn.transaction():
        await _disable_guards(conn, "events")
        await conn.execute("TRUNCATE events")
        await _enable_guards(conn, "events")
    await append_history(EventStore(pool), [h for i, h in enumerate(histories) if i != 5])


FORGERIES = {
    "one changed byte": "chain: hash does not match the stored bytes",
    "one changed byte, re-chained and re-signed": "consistency: the log at size",
    "a deleted event, re-signed": "consistency: the log at size",
    "two events swapped, re-signed": "consistency: the log at size",
    "truncated and refilled, re-signed": "consistency: the log at size",
    "a checkpoint signed with another key": "checkpoint: no signature by the key",
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_a_checkpoint_saved_earlier_catches_each_forgery_offline(
    own_db, signer, tmp_path: Path, forgery: str
) -> None:
    pool, url = own_db
    key, key_file = signer
    histories = await _record(pool, 3, 10)
    saved = tmp_path / "saved.checkpoint"
    saved_size = await _save_checkpoint(pool, key, saved)
    victim = histories[2][0].stream_id
    if forgery == "one changed byte":
        await tamper(pool, victim, 2)
    elif forgery == "one changed byte, re-chained and re-signed":
        await tamper(pool, victim, 2, rechain=True)
        await forge_log(pool, key)
    elif forgery == "a deleted event, re-signed":
        await _delete_last_event(pool, victim)
        await _record(pool, 9, 3)  # the log grows past the saved size again, hiding the shrink
        await forge_log(pool, key)
    elif forgery == "two events swapped, re-signed":
        await _swap_two_events(pool)
        await forge_log(pool, key)
    elif forgery == "truncated and refilled, re-signed":
        await _refill(pool, histories)
        await _record(pool, 9, 3)
        await forge_log(pool, key)
    bundle_path = tmp_path / "case.bundle.json"
    async with pool.acquire() as conn:
        size, _ = await transparency_log.log_size(conn)
    assert size >= saved_size
    since = saved_size
    bundle = await transparency_log.export_case(pool, case_id_of(victim), key.vkey(), since=since)
    assert bundle is not None
    if forgery == "a checkpoint signed with another key":
        forger = LogSigner.generate(key.name)
        async with pool.acquire() as conn:
            bundle["checkpoint"] = forger.sign_checkpoint(saved_size, await transparency_log.root(conn, saved_size))
    bundle_path.write_text(json.dumps(bundle))
    checked = offline("verify-bundle", bundle_path, "--key", key.vkey(), "--checkpoint", saved)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"FAILED {FORGERIES[forgery]}" in checked.stdout or f": {FORGERIES[forgery]}" in checked.stdout, (
        checked.stdout
    )


async def test_the_log_refuses_to_sign_a_tree_that_does_not_extend_its_last_checkpoint(
    own_db, signer, tmp_path
) -> None:
    pool, url = own_db
    key, key_file = signer
    histories = await _record(pool, 4, 6)
    await _save_checkpoint(pool, key, tmp_path / "saved.checkpoint")
    await tamper(pool, histories[1][0].stream_id, 2, rechain=True)
    await forge_log(pool, key, drop_checkpoints=False)
    await _record(pool, 5, 1)
    async with pool.acquire() as conn:
        await transparency_log.catch_up(conn)
        with pytest.raises(transparency_log.LogError, match='"inconsistent"'):
            await transparency_log.sign(conn, key)
    keeper = LogKeeper(pool, key, transparency_log.CheckpointSchedule(every_events=1))
    await keeper.step()
    async with pool.acquire() as conn:
        fault = await conn.fetchval("SELECT error FROM projection_faults WHERE name = $1", FAULT_NAME)
        assert fault is not None and "does not extend the checkpoint" in fault
        assert await conn.fetchval("SELECT count(*) FROM log_checkpoints") == 1
    # The forger rebuilt the tree from the forged events, but the signed checkpoint still says otherwise.
    recomputed = keyed_cli(url, key_file, "log", "recompute")
    assert recomputed.returncode == 1
    assert "the checkpoint at size" in recomputed.stdout and "does not hold the root" in recomputed.stdout
    signing = keyed_cli(url, key_file, "log", "sign")
    assert signing.returncode == 1 and 'log rule "inconsistent"' in signing.stderr


async def test_recompute_finds_a_stored_node_that_differs_from_the_events(own_db, signer) -> None:
    pool, _ = own_db
    await _record(pool, 6, 6)
    async with pool.acquire() as conn:
        await transparency_log.catch_up(conn)
        await _disable_guards(conn, "log_nodes")
        await conn.execute("UPDATE log_nodes SET hash = sha256(hash) WHERE level = 2 AND node_index = 1")
        await _enable_guards(conn, "log_nodes")
        report = await transparency_log.recompute(conn)
        assert not report.agrees
        assert report.differences == ["node (2, 1) differs from the events' tree"]
        with pytest.raises(asyncpg.PostgresError, match='log rule "append-only"'):
            await conn.execute("DELETE FROM log_leaves")


def test_the_offline_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(SCRIPT.read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not (isinstance(node, ast.ImportFrom) and node.level)
    }
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


async def test_the_keeper_follows_appends_and_signs_on_its_schedule(own_db, signer) -> None:
    pool, _ = own_db
    key, _ = signer
    keeper = LogKeeper(
        pool, key, transparency_log.CheckpointSchedule(every_events=10, every_seconds=0.3), poll_interval=0.1
    )
    stop = asyncio.Event()
    running = asyncio.create_task(keeper.run(stop))
    try:
        await _record(pool, 7, 3)

        async def signed() -> tuple[int, int]:
            async with pool.acquire() as conn:
                events = await conn.fetchval("SELECT count(*) FROM events")
                latest = await transparency_log.latest_checkpoint(conn)
            return events, latest.size if latest else -1

        await assert_eventually(signed, lambda v: v[0] == v[1], timeout=20)
    finally:
        stop.set()
        await running
    async with pool.acquire() as conn:
        assert (await transparency_log.recompute(conn)).agrees


async def test_the_audit_routes_publish_the_key_checkpoints_proofs_and_bundles(own_db, signer) -> None:
    pool, _ = own_db
    key, _ = signer
    histories = await _record(pool, 8, 4)
    services = Services(pool=pool, client=None, policy=DEFAULT_POLICY, task_queue="unused", log_signer=key)  # type: ignore[arg-type]
    app = create_app(services)
    app.state.services = services
    auditor = {"Authorization": f"Bearer {await create_token(pool, 'auditor-log', Role.AUDITOR)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        assert (await http.get("/v1/audit/key")).status_code == 401
        published = (await http.get("/v1/audit/key", headers=auditor)).json()
        assert published == {"origin": key.name, "key": key.vkey(), "algorithm": "Ed25519"}
        missing = await http.get("/v1/audit/checkpoint", headers=auditor)
        assert missing.status_code == 404 and missing.json()["rule"] == "log.no_checkpoint"
        case_id = case_id_of(histories[1][0].stream_id)
        assert (await http.get(f"/v1/escalations/{case_id}/bundle")).status_code == 401
        assert (await http.get("/v1/escalations/no-such-case/bundle", headers=auditor)).status_code == 404
        bundle = (await http.get(f"/v1/escalations/{case_id}/bundle", headers=auditor)).json()  # signs first
        assert verify_bundle(bundle, VerifierKey.parse(published["key"])) == (len(histories[1]), [])
        latest = await http.get("/v1/audit/checkpoint", headers=auditor)
        assert latest.status_code == 200 and latest.headers["content-type"].startswith("text/plain")
        checkpoint = Checkpoint.parse(latest.text)
        assert checkpoint.problem_with_signature(key.verifier()) is None
        by_size = await http.get(f"/v1/audit/checkpoints/{checkpoint.size}", headers=auditor)
        assert by_size.text == latest.text
        unsigned = await http.get(f"/v1/audit/checkpoints/{checkpoint.size + 1}", headers=auditor)
        assert unsigned.json()["rule"] == "log.no_checkpoint"

        proof = (await http.get("/v1/audit/proofs/inclusion?position=3", headers=auditor)).json()
        assert inclusion_verifies(
            leaf_hash(bytes.fromhex(proof["hash"])),
            proof["leaf_index"],
            checkpoint.size,
            [bytes.fromhex(p) for p in proof["proof"]],
            checkpoint.root,
        )
        both = await http.get(f"/v1/audit/proofs/inclusion?position=3&event_id={uuid.uuid4()}", headers=auditor)
        assert both.status_code == 422 and both.json()["rule"] == "request.invalid"
        beyond = await http.get(f"/v1/audit/proofs/inclusion?position=3&size={checkpoint.size + 5}", headers=auditor)
        assert beyond.status_code == 422 and beyond.json()["rule"] == "log.bad_size"

        first = checkpoint.size // 3
        async with pool.acquire() as conn:
            first_root = await transparency_log.root(conn, first)
        document = (await http.get(f"/v1/audit/proofs/consistency?first={first}", headers=auditor)).json()
        assert consistency_verifies(
            first, checkpoint.size, first_root, checkpoint.root, [bytes.fromhex(p) for p in document["proof"]]
        )
        too_far = await http.get(f"/v1/audit/proofs/consistency?first={checkpoint.size + 1}", headers=auditor)
        assert too_far.status_code == 422 and too_far.json()["rule"] == "log.bad_size"

    keyless = Services(pool=pool, client=None, policy=DEFAULT_POLICY, task_queue="unused")  # type: ignore[arg-type]
    app = create_app(keyless)
    app.state.services = keyless
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        refused = await http.get("/v1/audit/key", headers=auditor)
        assert refused.status_code == 404 and refused.json()["rule"] == "log.no_key"


async def test_the_readme_auditor_session_runs_as_written(own_db, signer, tmp_path: Path) -> None:
    """The README's audit session, run by bash in a scratch directory, with more events appended at its
    "weeks later" line, so the consistency it proves spans real growth."""
    pool, url = own_db
    _, key_file = signer
    histories = await _record(pool, 10, 5)
    case_id = case_id_of(histories[0][0].stream_id)
    script = readme_session("audit").replace(" c-1", f" {case_id}").replace("c-1.bundle", "case.bundle")
    script = script.replace("scripts/verify_bundle.py", str(SCRIPT))
    assert script.startswith("export DATABASE_URL=... ESCALATIONS_LOG_KEY_FILE=.data/log-key\n")
    script = script.split("\n", 1)[1]
    before, later = script.split("# ... weeks later", 1)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ESCALATIONS_LOG_KEY_FILE": str(key_file),
        "ESCALATIONS_LOG_LEVEL": "WARNING",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }

    def run(part: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", part], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90
        )

    first = await asyncio.to_thread(run, before)
    assert first.returncode == 0, first.stdout + first.stderr
    await _record(pool, 11, 3)
    second = await asyncio.to_thread(run, "# ..." + later)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("OK ") == 2, second.stdout
