"""Scenario ``chaos``: the soak's workload with its faults (worker and projector SIGKILLs, PostgreSQL cuts)
beside the same workload with none, one after the other: every breach's stored - due.

Both runs are the fault suite's soak test in a process of its own (``bench.soak.run_soak``), each with its
own Temporal dev server and database. The targets: p99 at most 5 s and max at most 15 s with the faults.
"""

from __future__ import annotations

import asyncio

from bench.report import Row, percentile
from bench.soak import run_soak


async def chaos(seconds: float, kills: int) -> list[Row]:
    """The quiet run first, then the faulted one."""
    others = max(1, kills // 20)
    quiet = await asyncio.to_thread(run_soak, seconds, 0, 0, 0, 0.5)
    faulted = await asyncio.to_thread(run_soak, seconds, kills, others, others, 0.5)
    ms = [[s * 1000 for s in run["lateness_seconds"]] for run in (faulted, quiet)]
    label = f"chaos: {kills} worker kills, {others} projector kills, {others} 4 s database cuts in {seconds:g}s"
    baseline = "the same workload, no faults"
    return [
        Row(f"{label}: breaches enforced", "count", len(ms[0]), len(ms[1]), baseline, True),
        Row(f"{label}: breach stored - due p50", "ms", percentile(ms[0], 50), percentile(ms[1], 50), baseline),
        Row(f"{label}: breach stored - due p99", "ms", percentile(ms[0], 99), percentile(ms[1], 99), baseline),
        Row(f"{label}: breach stored - due max", "ms", max(ms[0]), max(ms[1]), baseline),
    ]
