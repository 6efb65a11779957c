"""SIGKILL the projector at random moments while cases append; after restart the read models
equal a fresh rebuild, row for row."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from events.store import EventStore
from projections import PROJECTIONS
from samples.histories import generate_case
from tests.projection_support import differences_from_rebuild

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def start_projector(url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "ESCALATIONS_LOG_LEVEL": "WARNING"}
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", "project"], cwd=ROOT, env=env, stdout=out, stderr=out
        )


async def test_killed_projector_resumes_to_read_models_identical_to_a_rebuild(own_db, tmp_path: Path) -> None:
    pool, url = own_db
    store = EventStore(pool)
    rng = random.Random(13)
    histories = [generate_case(rng, i) for i in range(60)]
    log = tmp_path / "projector.log"
    projector = start_projector(url, log)

    async def append_in_chunks(events) -> None:  # noqa: ANN001
        version = 0
        while version < len(events):
            size = rng.randint(1, 6)
            await store.append(events[0].stream_id, version, events[version : version + size])
            version += len(events[version : version + size])
            await asyncio.sleep(rng.uniform(0, 0.02))

    writers = asyncio.gather(*(append_in_chunks(h) for h in histories))
    kills = 0
    while not writers.done() or kills < 6:
        await asyncio.sleep(rng.uniform(0.1, 0.5))
        projector.send_signal(signal.SIGKILL)
        projector.wait(timeout=10)
        kills += 1
        projector = start_projector(url, log)
    await writers
    try:
        async with pool.acquire() as conn:
            head = await conn.fetchval("SELECT max(position) FROM events")
            for _ in range(600):
                positions = await conn.fetch("SELECT name, position FROM projection_checkpoints")
                if len(positions) == len(PROJECTIONS) and all(p["position"] == head for p in positions):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"projector did not catch up to {head}: {positions}; log: {log.read_text()[-2000:]}")
    finally:
        projector.terminate()
        projector.wait(timeout=15)
    assert kills >= 6
    assert await differences_from_rebuild(pool) == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_trail") == sum(len(h) for h in histories)
        assert await conn.fetchval("SELECT count(*) FROM case_list") == len(histories)
