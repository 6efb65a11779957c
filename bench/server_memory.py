"""``python -m bench.server_memory [--workflows 8000] [--server-args '...']``: the Temporal dev server's memory
and start rate as open workflows accumulate.

Starts a dev server from the wheel with the arguments given (by default its state in memory, as
``temporal server start-dev`` comes), then bare workflows that sleep a day (32 starts in flight, a worker
taking their first tasks), and prints after each quarter the server's resident memory, its growth per
workflow since the start and over the last quarter, and the start rate so far. What chose the dev stack's
and the benchmark's server settings (docs/benchmarks.md, "The Temporal dev server"); for example:

    python -m bench.server_memory
    python -m bench.server_memory --server-args '--db-filename /tmp/t.db'
    python -m bench.server_memory --server-args '--db-filename /tmp/t.db --sqlite-pragma journal_mode=WAL'
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
import uuid

from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.baseline_workflows import BareDeadlineWorkflow, BareSpec
from bench.dev_server import start_dev_server
from bench.spread_bench import server_rss

DAY = 24 * 3600.0
IN_FLIGHT = 32


async def measure(workflows: int, server_args: str) -> None:
    env = await start_dev_server(shlex.split(server_args))  # its state in memory unless the arguments say
    queue = f"server-memory-{uuid.uuid4().hex[:8]}"
    worker = Worker(
        env.client,
        task_queue=queue,
        workflows=[BareDeadlineWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=1000,  # the worker's memory is not measured; the server's is
    )
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def start(i: int) -> None:
        async with gate:
            await env.client.start_workflow(
                BareDeadlineWorkflow.run,
                BareSpec(wake_seconds=[0.75 * DAY, DAY]),
                id=f"server-memory-{i}-{uuid.uuid4().hex[:8]}",
                task_queue=queue,
            )

    try:
        async with worker:
            await asyncio.sleep(2)
            base = previous = server_rss()
            starting = 0.0  # seconds spent starting (the pauses to read the memory left out)
            quarter = workflows // 4
            print(f"server {server_args or '(in memory)'}: {base / 2**20:.0f} MiB before the first start")
            for k in range(1, 5):
                began = time.monotonic()
                await asyncio.gather(*(start(i) for i in range((k - 1) * quarter, k * quarter)))
                starting += time.monotonic() - began
                await asyncio.sleep(3)  # the first tasks taken, the server's memory settled a little
                rss = server_rss()
                print(
                    f"{k * quarter:>7} open: {rss / 2**20:7.0f} MiB resident, "
                    f"{(rss - base) / (k * quarter) / 1024:6.1f} KiB a workflow since the start, "
                    f"{(rss - previous) / quarter / 1024:6.1f} over the last {quarter}; "
                    f"{k * quarter / starting:.0f} starts/s",
                    flush=True,
                )
                previous = rss
    finally:
        await env.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.server_memory")
    parser.add_argument("--workflows", type=int, default=8000, help="bare workflows to start (four quarters)")
    parser.add_argument("--server-args", default="", help="arguments for temporal server start-dev (one string)")
    args = parser.parse_args()
    asyncio.run(measure(args.workflows, args.server_args))
    # The Temporal SDK can abort the interpreter at exit (sdk-python#300), as python -m bench does: leave at once.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
