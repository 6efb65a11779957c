"""``python -m bench.worker_memory [--cache 2000] [--open 6000]``: our worker's memory and full garbage
collections as its workflow cache fills and then turns over.

Starts a Temporal dev server as the benchmark does (state in a file, write-ahead logging), a database
(``DATABASE_URL``'s server, else an embedded PostgreSQL), and one worker process (``worker.py``, as
production runs it) with ``ESCALATIONS_MAX_CACHED_WORKFLOWS`` set to ``--cache``; then opens cases whose
deadlines are a day away as fast as the worker takes their first tasks (as the spread scenarios do), and prints every 2,000 openings, and at the end, the worker's resident memory and its full
collections so far (``escalations_gc_pause_seconds``: how many, the time they stopped it, the mean). Past
the cache's size every opening evicts a case, as in a long-running deployment. What chose the worker's
default cache (README "Tuning"); for example:

    python -m bench.worker_memory --cache 2000 --open 8000
    python -m bench.worker_memory --cache 10000 --open 14000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psutil

from bench.deadline_bench import bench_opening
from bench.dev_server import start_dev_server
from bench.net import free_port
from bench.spread_bench import ROOT, one_level_policy, start_as_fast_as_taken, worker_gc, worker_process
from cli.embedded_postgres import start_embedded_postgres, stop_embedded_postgres
from events.database import create_database, drop_database
from worker import Settings
from workflows.client import open_case
from workflows.core.vocabulary import Severity

EVERY = 2000  # openings between two readings (a multiple of the chunk the openings go in)


async def measure(cache: int, count: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="esc-worker-memory-"))
    env = await start_dev_server(state_file=folder / "temporal.db")
    server_dsn, pg_server = os.environ.get("DATABASE_URL"), None
    if not server_dsn:
        server_dsn, pg_server = start_embedded_postgres(folder / "pg")
    database = f"esc_worker_memory_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(server_dsn, database)
    policy_file = folder / "policy.json"
    policy_file.write_text(json.dumps(one_level_policy(timedelta(seconds=60)).content()))
    queue = f"worker-memory-{uuid.uuid4().hex[:8]}"
    metrics_address = f"127.0.0.1:{free_port()}"
    worker = worker_process(
        [sys.executable, str(ROOT / "worker.py")],
        {
            **os.environ,
            "DATABASE_URL": dsn,
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "ESCALATIONS_LOG_LEVEL": "WARNING",
            "ESCALATIONS_TASK_QUEUE": queue,
            "ESCALATIONS_POLICY": str(policy_file),
            "ESCALATIONS_MAX_CACHED_WORKFLOWS": str(cache),
            "ESCALATIONS_METRICS_ADDRESS": metrics_address,
            "ESCALATIONS_DIGEST_EVERY": "off",
        },
        folder / "worker.log",
    )
    began = time.monotonic()

    async def open_one(i: int) -> None:
        # sev4: acknowledged within a day, so nothing falls due while the cache turns over.
        opening = bench_opening(f"worker-memory-{i}-{uuid.uuid4().hex[:8]}")
        await open_case(env.client, opening.model_copy(update={"severity": Severity.SEV4}), task_queue=queue)

    async def report(opened: int) -> None:
        gc = await worker_gc([metrics_address])
        rss = psutil.Process(worker.pid).memory_info().rss / 2**20
        mean = gc["seconds"] / gc["collections"] * 1000 if gc["collections"] else 0.0
        print(
            f"{opened:>7} opened ({opened / (time.monotonic() - began):4.1f}/s): worker {rss:6.0f} MiB resident, "
            f"{gc['collections']:3.0f} full collections, {gc['seconds']:5.1f} s stopped, {mean:5.0f} ms each",
            flush=True,
        )

    async def report_every(opened: int) -> None:
        if opened % EVERY == 0 and opened < count:
            await report(opened)

    try:
        await asyncio.sleep(5)  # the worker connects and starts polling
        print(f"worker cache {cache} cases; opening {count}", flush=True)
        await start_as_fast_as_taken(env.client, queue, open_one, count, after_chunk=report_every)
        await report(count)
    finally:
        worker.terminate()
        worker.wait(30)
        await drop_database(server_dsn, database)
        if pg_server is not None:
            stop_embedded_postgres(pg_server)
        await env.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_memory")
    parser.add_argument("--cache", type=int, default=Settings.max_cached_workflows, help="the worker's cache")
    parser.add_argument("--open", type=int, default=None, help="cases to open (default: the cache and 4,000)")
    args = parser.parse_args()
    asyncio.run(measure(args.cache, args.open if args.open is not None else args.cache + 4000))
    # The Temporal SDK can abort the interpreter at exit (sdk-python#300), as python -m bench does: leave at once.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
