"""``python -m bench.soak [--cases N] [--kills K]``: the worker-chaos fault test, longer than CI runs it.

CI runs ``tests/faults`` at 200 cases and 20 kills (tens of seconds each).
This runs the same test, with the same invariant checks, at the sizes given
(default 2,000 cases, 200 kills), and prints its row of the Reliability
table. Results go to ``bench/soak.json``, never to the README's table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "soak.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=200)
    args = parser.parse_args()
    env = {
        **os.environ,
        "FAULT_SOAK_CASES": str(args.cases),
        "FAULT_SOAK_KILLS": str(args.kills),
        "FAULT_RESULTS": str(RESULTS),
    }
    test = "tests/faults/test_worker_chaos.py::test_workers_stopped_in_turn_lose_duplicate_and_miss_nothing[crash]"
    status = subprocess.call([sys.executable, "-m", "tests", "-q", "-p", "no:cacheprovider", test], cwd=ROOT, env=env)
    subprocess.call([sys.executable, "-m", "tests.faults.report"], cwd=ROOT, env=env)
    sys.exit(status)


if __name__ == "__main__":
    main()
