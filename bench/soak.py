"""``python -m bench.soak [--minutes 120] [--kills 1000] [--readme]``: the soak, for as long as asked.

A mixed workload (openings, every command a case's state offers, as updates and signals, deadlines falling
due) while the two workers are SIGKILLed in turn, the projector is SIGKILLed and PostgreSQL is cut off,
spread evenly through the run; then the fault suite's invariants over every case. It is the fault suite's
soak test (``tests/faults/test_soak.py``, 30 s in CI) run at the sizes given, in a process of its own. The
result row goes to ``bench/soak.json``; ``--readme`` also puts it in the README's Reliability section.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "soak.json"
README = ROOT / "README.md"
MARKERS = ("<!-- soak:start -->", "<!-- soak:end -->")
TEST = "tests/faults/test_soak.py"


def run_soak(seconds: float, kills: int, projector_kills: int, cuts: int, open_every: float) -> dict:
    """Run the soak test at these sizes; its result (``row`` and ``lateness_seconds``), or SystemExit."""
    output = Path(tempfile.mkdtemp(prefix="esc-soak-")) / "soak.json"
    env = {
        **os.environ,
        "FAULT_SOAK_SECONDS": str(seconds),
        "FAULT_SOAK_KILLS": str(kills),
        "FAULT_SOAK_PROJECTOR_KILLS": str(projector_kills),
        "FAULT_SOAK_CUTS": str(cuts),
        "FAULT_SOAK_OPEN_EVERY": str(open_every),
        "FAULT_SOAK_OUTPUT": str(output),
        # Its row stays out of the CI rows that the Reliability table publishes.
        "FAULT_RESULTS": str(output.with_name("reliability.json")),
    }
    status = subprocess.call([sys.executable, "-m", "tests", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT, env=env)
    if status != 0 or not output.exists():
        raise SystemExit(f"the soak failed (pytest status {status}); its output is above")
    return json.loads(output.read_text())


def publish(found: dict) -> None:
    """The row as a table between the README's soak markers."""
    text = README.read_text(encoding="utf-8")
    start, end = MARKERS
    lines = [f"| {k} | {'; '.join(v) if isinstance(v, list) else v} |" for k, v in found.items()]
    table = "\n".join(["| | |", "|---|---|", *lines])
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
    found = run_soak(
        args.minutes * 60,
        args.kills,
        args.projector_kills if args.projector_kills is not None else others,
        args.cuts if args.cuts is not None else others,
        args.open_every,
    )["row"]
    RESULTS.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(found, indent=2))
    if args.readme:
        publish(found)


if __name__ == "__main__":
    main()
