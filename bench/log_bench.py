"""The transparency log's costs: appends with the log kept beside appends without it, inclusion proofs at
1,000,000 leaves, and the offline verification of a 1,000-event bundle.

* Append: 16 writers append whole case histories (as the ``append`` scenario does), once with the log keeper
  following in a process of its own (as it runs in production, beside the projector) and once without; each
  side twice, alternating, best of two. Ours ends when the log holds every event, so the work timed includes
  keeping the log.
* Proofs: a log of 1,000,000 leaves (synthetic event hashes, built by the keeper's own ``add_leaves``) in a
  database of its own; the inclusion proof of 1,000 random leaves against the whole tree, each timed, beside
  one primary-key read of a leaf (the floor of any read from the same table).
* Bundle: 1,000 chained events of one stream, proved against a signed checkpoint of that 1,000,000-leaf log,
  checked by ``scripts/verify_bundle.py`` as an auditor runs it (a whole process), beside the chain-only
  check of the same events by ``scripts/verify_export.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from bench.report import Row, percentile
from events import merkle, transparency_log
from events.database import create_database, create_pool, drop_database
from events.log_keys import KEY_ENV, LogSigner, signer_from_env
from events.records import ZERO_HASH, chain_hash
from events.store import EventStore
from projections.log_keeper import LogKeeper
from samples.histories import generate_case

ROOT = Path(__file__).resolve().parent.parent


async def append_with_and_without_the_log(pool: asyncpg.Pool, dsn: str, cases: int, writers: int = 16) -> list[Row]:
    rng = random.Random(77)
    histories = [generate_case(rng, i) for i in range(cases)]
    total = sum(len(h) for h in histories)
    store = EventStore(pool)
    signer = LogSigner.generate("bench.example/log")

    async def append_all(suffix: str) -> None:
        queue = list(histories)

        async def writer() -> None:
            while queue:
                events = queue.pop()
                fresh = [
                    e.model_copy(update={"event_id": uuid.uuid4(), "stream_id": e.stream_id + suffix}) for e in events
                ]
                await store.append(fresh[0].stream_id, 0, fresh)

        await asyncio.gather(*(writer() for _ in range(writers)))

    async def with_log() -> float:
        async with pool.acquire() as conn:
            await transparency_log.catch_up(conn)
        keeper = subprocess.Popen(
            [sys.executable, "-m", "bench.log_bench", dsn],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, KEY_ENV: signer.text()},  # one key for every run: each checkpoint extends the last
        )
        assert keeper.stdout is not None and keeper.stdout.readline().strip() == "keeping"
        started = time.perf_counter()
        await append_all(f"-log-{uuid.uuid4().hex[:6]}")
        async with pool.acquire() as conn:
            head = await conn.fetchval("SELECT max(position) FROM events")
            while (await transparency_log.log_size(conn))[1] < head:
                await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        keeper.communicate("stop\n", timeout=30)
        return total / elapsed

    async def without_log() -> float:
        started = time.perf_counter()
        await append_all(f"-bare-{uuid.uuid4().hex[:6]}")
        return total / (time.perf_counter() - started)

    ours, bare = [], []
    for _ in range(2):
        ours.append(await with_log())
        bare.append(await without_log())
    return [
        Row(
            f"log: event append with the log kept, {writers} writers ({total} events)",
            "events/s",
            max(ours),
            max(bare),
            "the same appends, no log",
            True,
        )
    ]


async def _build_log(conn: asyncpg.Connection, leaves: int, chained: list[str]) -> None:
    """A log of ``leaves`` leaves: the hashes of ``chained`` first, then synthetic ones, in batches."""
    batch = 50_000
    for start in range(0, leaves, batch):
        entries = []
        for i in range(start, min(start + batch, leaves)):
            event_hash = chained[i] if i < len(chained) else hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
            entries.append((i + 1, event_hash))
        async with conn.transaction():
            await transparency_log.add_leaves(conn, start, entries)


def _chained_stream(count: int) -> list[dict]:
    """``count`` events of one stream, chained as the store chains them, with bodies of a realistic size."""
    events, prev = [], ZERO_HASH
    for version in range(1, count + 1):
        body = json.dumps(
            {"stream_id": "case-bench-bundle", "version": version, "type": "escalation.note_added", "text": "x" * 400},
            separators=(",", ":"),
            sort_keys=True,
        )
        digest = chain_hash(prev, body)
        events.append(
            {"stream_id": "case-bench-bundle", "version": version, "body": body, "prev_hash": prev, "hash": digest}
        )
        prev = digest
    return events


async def proofs_and_bundles(server_dsn: str, leaves: int, bundle_events: int) -> list[Row]:
    database = f"esc_bench_log_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server_dsn, database)
    pool = await create_pool(dsn, max_size=4)
    try:
        stream = _chained_stream(bundle_events)
        async with pool.acquire() as conn:
            started = time.perf_counter()
            await _build_log(conn, leaves, [e["hash"] for e in stream])
            build_seconds = time.perf_counter() - started
            signer = LogSigner.generate("bench.example/log")
            checkpoint = await transparency_log.sign(conn, signer)
            assert checkpoint is not None and checkpoint.size == leaves
            rng = random.Random(9)
            proof_ms, read_ms = [], []
            for _ in range(1000):
                index = rng.randrange(leaves)
                t = time.perf_counter()
                await transparency_log.inclusion(conn, index, leaves)
                proof_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await conn.fetchval("SELECT hash FROM log_leaves WHERE leaf_index = $1", index)
                read_ms.append((time.perf_counter() - t) * 1000)
            ranges = {i: merkle.inclusion_ranges(i, leaves) for i in range(bundle_events)}
            nodes = await transparency_log._nodes(conn, merkle.nodes_for([r for p in ranges.values() for r in p]))
        bundle = {
            "format": "escalations-case-bundle/1",
            "case_id": "bench-bundle",
            "stream_id": "case-bench-bundle",
            "checkpoint": checkpoint.note,
            "public_key": signer.vkey(),
            "events": [
                {
                    **{k: e[k] for k in ("version", "prev_hash", "hash", "body")},
                    "position": i + 1,
                    "leaf_index": i,
                    "inclusion_proof": [h.hex() for h in merkle.hashes_for(ranges[i], nodes.__getitem__)],
                }
                for i, e in enumerate(stream)
            ],
        }
        verify_ms, export_ms = _time_verifiers(bundle, stream, signer.vkey())
    finally:
        await pool.close()
        await drop_database(server_dsn, database)
    print(f"log of {leaves} leaves built in {build_seconds:.1f} s ({leaves / build_seconds:,.0f} leaves/s)")
    return [
        Row(
            f"inclusion proof p50 at {leaves:,} leaves",
            "ms",
            percentile(proof_ms, 50),
            percentile(read_ms, 50),
            "one leaf read",
        ),
        Row(
            f"inclusion proof p99 at {leaves:,} leaves",
            "ms",
            percentile(proof_ms, 99),
            percentile(read_ms, 99),
            "one leaf read",
        ),
        Row(
            f"log: offline verify, {bundle_events}-event bundle",
            "ms",
            verify_ms,
            export_ms,
            "chain-only check (verify_export.py)",
        ),
    ]


def _time_verifiers(bundle: dict, stream: list[dict], vkey: str) -> tuple[float, float]:
    """Best of three whole-process runs of each verifier, as an auditor runs them (isolated mode)."""
    with tempfile.TemporaryDirectory() as scratch:
        bundle_file, export_file = Path(scratch) / "bundle.json", Path(scratch) / "export.jsonl"
        bundle_file.write_text(json.dumps(bundle))
        export_file.write_text("".join(json.dumps(e) + "\n" for e in stream))
        commands = (
            [
                sys.executable,
                "-I",
                str(ROOT / "scripts" / "verify_bundle.py"),
                "verify-bundle",
                str(bundle_file),
                "--key",
                vkey,
            ],
            [sys.executable, "-I", str(ROOT / "scripts" / "verify_export.py"), str(export_file)],
        )
        timings = []
        for command in commands:
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True)
                best = min(best, (time.perf_counter() - t) * 1000)
                if done.returncode != 0:
                    raise RuntimeError(f"{command[2]} failed: {done.stdout}{done.stderr}")
            timings.append(best)
    return timings[0], timings[1]


async def _keep(dsn: str) -> None:
    """The keeper process of the append comparison: keep the log until told to stop on stdin."""
    pool = await create_pool(dsn, max_size=2)
    stop = asyncio.Event()
    keeper = asyncio.create_task(LogKeeper(pool, signer_from_env(), poll_interval=0.2).run(stop))
    print("keeping", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    stop.set()
    await keeper
    await pool.close()


if __name__ == "__main__":
    from worker import configure_logging

    configure_logging("WARNING")
    asyncio.run(_keep(sys.argv[1]))
