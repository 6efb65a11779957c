"""``policy simulate`` over a generated history: time for N cases, against reading and folding the same cases."""

from __future__ import annotations

import random
import time
import uuid

from bench.report import Row
from cli.policy_commands import case_histories, simulation_report
from events.database import create_database, create_pool, drop_database
from events.store import EventStore
from samples.histories import append_history, generate_case
from workflows.core.evolve import fold
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy


async def shadow_run(server_dsn: str, cases: int) -> list[Row]:
    """The unchanged policy must reproduce every case exactly; the run fails loudly if it does not."""
    database = f"esc_sim_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server_dsn, database)
    pool = await create_pool(dsn, max_size=4)
    try:
        rng = random.Random(11)
        events = await append_history(EventStore(pool), [generate_case(rng, i) for i in range(cases)])
        policy = load_policy(DEFAULT_POLICY_PATH)

        started = time.perf_counter()
        histories = await case_histories(pool, None, None)
        report = simulation_report(histories, policy, None)
        ours = time.perf_counter() - started

        started = time.perf_counter()
        for history in await case_histories(pool, None, None):
            fold(history)
        baseline = time.perf_counter() - started
    finally:
        await pool.close()
        await drop_database(server_dsn, database)
    totals = report["totals"]
    if totals["cases_that_would_differ"] or totals["breaches_actual"] != totals["breaches_simulated"]:
        raise AssertionError(f"the unchanged policy did not reproduce the history: {totals}")
    print(
        f"policy simulate: {cases} cases, {events} events, {totals['breaches_actual']} breaches, "
        f"unchanged policy reproduced every case exactly"
    )
    return [Row(f"policy simulate, {cases} generated cases ({events} events)", "s", ours, baseline, "read + fold")]
