"""``python -m bench.soak [--minutes 120] [--kills 1000]``: the soak, for as long as asked.

A mixed workload (openings, every command a case's state offers, as updates and signals, deadlines falling
due) while the two workers are SIGKILLed in turn, the projector is SIGKILLed and PostgreSQL is cut off,
spread evenly through the run; then the fault suite's invariants over every case (``tests/faults/soak.py``).
CI runs the same code for a minute (``tests/faults/test_soak.py``). The result row goes to
``bench/soak.json``; ``--readme`` also puts it in the README's Reliability section.

Uses ``DATABASE_URL`` (a server where it may create a database) and starts a Temporal dev server of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from cli.devstack import temporal_binary
from events.database import create_database, create_pool, drop_database
from tests.faults.soak import Soak, SoakPlan, row
from workflows.data_converter import data_converter

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "soak.json"
README = ROOT / "README.md"
MARKERS = ("<!-- soak:start -->", "<!-- soak:end -->")


async def soak(plan: SoakPlan, server_dsn: str) -> dict:
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter,
        dev_server_existing_path=temporal_binary(),
        dev_server_startup_timeout=timedelta(seconds=60),
    )
    database = f"esc_soak_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_dsn, database)
    pool = await create_pool(url, max_size=20)
    try:
        logs = Path(tempfile.mkdtemp(prefix="esc-soak-"))
        print(f"soak: logs in {logs}", flush=True)
        result = await Soak(env.client, pool, url, f"soak-{uuid.uuid4().hex[:8]}", logs, plan).run()
        return row(result)
    finally:
        await pool.close()
        await drop_database(server_dsn, database)
        await env.shutdown()


def publish(found: dict) -> None:
    """The row as a table between the README's soak markers."""
    text = README.read_text(encoding="utf-8")
    start, end = MARKERS
    table = "\n".join(
        ["| | |", "|---|---|", *(f"| {k} | {', '.join(v) if isinstance(v, list) else v} |" for k, v in found.items())]
    )
    replaced, count = re.subn(f"{re.escape(start)}.*?{re.escape(end)}", f"{start}\n{table}\n{end}", text, flags=re.S)
    if count != 1:
        raise SystemExit(f"the README has no {start} ... {end} section")
    README.write_text(replaced, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120, help="minutes of openings and faults")
    parser.add_argument("--kills", type=int, default=1000, help="worker SIGKILLs, spread through the run")
    parser.add_argument("--projector-kills", type=int, default=None, help="default: one per 50 worker kills")
    parser.add_argument("--cuts", type=int, default=None, help="PostgreSQL cuts; default: one per 50 worker kills")
    parser.add_argument("--open-every", type=float, default=1.0, help="seconds between openings")
    parser.add_argument("--readme", action="store_true", help="also publish the row in the README")
    args = parser.parse_args()
    others = max(1, args.kills // 50)
    plan = SoakPlan(
        seconds=args.minutes * 60,
        worker_kills=args.kills,
        projector_kills=args.projector_kills if args.projector_kills is not None else others,
        database_cuts=args.cuts if args.cuts is not None else others,
        open_every=args.open_every,
    )
    server_dsn = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    found = asyncio.run(soak(plan, server_dsn))
    RESULTS.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(found, indent=2))
    if args.readme:
        publish(found)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
