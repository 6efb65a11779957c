"""Scenario ``chaos``: the soak's workload with its faults (worker and projector SIGKILLs, PostgreSQL cuts)
against the same workload with none, one after the other on the same servers: every breach's stored - due.

The targets (issue "bounded lateness after a worker dies"): p99 at most 5 s and max at most 15 s with kills.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from temporalio.client import Client

from bench.report import Row, percentile
from events.database import create_database, create_pool, drop_database
from tests.faults.soak import Soak, SoakPlan


async def chaos(client: Client, server_dsn: str, seconds: float, kills: int) -> list[Row]:
    """The quiet run first, then the faulted one, each in a database of its own."""
    others = max(1, kills // 20)
    faulted = SoakPlan(seconds=seconds, worker_kills=kills, projector_kills=others, database_cuts=others)
    quiet = SoakPlan(seconds=seconds, worker_kills=0, projector_kills=0, database_cuts=0)
    results = []
    for plan in (quiet, faulted):
        database = f"esc_bench_chaos_{uuid.uuid4().hex[:8]}"
        url = await create_database(server_dsn, database)
        pool = await create_pool(url, max_size=10)
        try:
            logs = Path(tempfile.mkdtemp(prefix="esc-bench-chaos-"))
            results.append(await Soak(client, pool, url, f"bench-chaos-{uuid.uuid4().hex[:8]}", logs, plan).run())
        finally:
            await pool.close()
            await drop_database(server_dsn, database)
    base, ours = results
    ms = [[s * 1000 for s in r.lateness_seconds] for r in (ours, base)]
    label = f"chaos: {kills} worker kills, {others} projector kills, {others} 4 s database cuts in {seconds:g}s"
    baseline = "the same workload, no faults"
    return [
        Row(f"{label}: breaches enforced", "count", ours.breaches, base.breaches, baseline, True),
        Row(f"{label}: breach stored - due p50", "ms", percentile(ms[0], 50), percentile(ms[1], 50), baseline),
        Row(f"{label}: breach stored - due p99", "ms", percentile(ms[0], 99), percentile(ms[1], 99), baseline),
        Row(f"{label}: breach stored - due max", "ms", max(ms[0]), max(ms[1]), baseline),
    ]
