"""Scenario ``capacity``: a ramp of the deadline rate, each step the spread scenario (each side alone on a
fresh server of its own, the same wake-up schedule); the highest rate at which every deadline's stored - due
p99 stays within the target, for ours and for the bare baseline, and their ratio.

A step opens ``rate * span / 2`` workflows evenly over ``span`` seconds (each has two deadlines in the window,
a warning and a breach, ``lead`` seconds after opening), so deadlines fall at ``rate`` per second once the
first ones are due. Steps go up until both sides miss the target at a step, or the steps run out; a side's
capacity is the highest step rate it held before it first missed (0: it missed the first).
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from bench.dev_server import ServerFactory
from bench.report import Row
from bench.spread_bench import spread_each_alone

TARGET_P99_MS = 1000.0


async def capacity(
    servers: ServerFactory,
    pool: asyncpg.Pool,
    dsn: str,
    rates: Sequence[float],
    *,
    span: float,
    lead: float,
) -> list[Row]:
    """One spread run per rate (deadlines per second), lowest first; the per-step p99 rows and the capacity."""
    rows: list[Row] = []
    held: dict[str, float] = {"ours": 0.0, "baseline": 0.0}
    missed: dict[str, bool] = {"ours": False, "baseline": False}
    base = ""
    for rate in rates:
        n = max(1, round(rate * span / 2))
        step = await spread_each_alone(servers, pool, dsn, n, span=span, lead=lead)
        p99 = next(r for r in step if r.scenario.endswith("stored - due p99"))
        enforced = next(r for r in step if "enforced within" in r.scenario)
        base = p99.baseline_name  # the spread scenario's own description of its baseline
        rows.append(Row(f"capacity: {rate:g} deadlines/s: stored - due p99", "ms", p99.ours, p99.baseline, base))
        for side, late, count in (
            ("ours", p99.ours, enforced.ours),
            ("baseline", p99.baseline, enforced.baseline),
        ):
            # A side holds a step only with every deadline enforced and the p99 within the target.
            if not missed[side] and late <= TARGET_P99_MS and count >= 2 * n:
                held[side] = rate
            else:
                missed[side] = True
        if all(missed.values()):
            break
    rows.append(
        Row(
            f"capacity: highest deadline rate with stored - due p99 <= {TARGET_P99_MS / 1000:g} s (span {span:g}s)",
            "per s",
            held["ours"],
            held["baseline"],
            base,
            higher_is_better=True,
        )
    )
    return rows
