"""The Reliability table: each fault test records what it did and how it ended; this prints the table.

``python -m tests.faults.report`` prints it as Markdown from the latest run's rows
(``.data/reliability.json``, which the fault tests rewrite on every run: a failed test records
its failure, so a stale pass never survives a red run). ``--readme`` publishes them: it copies
the rows to ``docs/reliability.json`` and writes the table into README.md between the
``reliability`` markers. A test run itself never writes a tracked file.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# FAULT_RESULTS: another file, so a trial run's rows stay out of the ones published.
RESULTS = Path(os.environ.get("FAULT_RESULTS", ROOT / ".data" / "reliability.json"))
PUBLISHED = ROOT / "docs" / "reliability.json"
README = ROOT / "README.md"
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"


@dataclass
class FaultRun:
    """One fault test's row. The test fills in ``fault``, ``workload``, ``checked`` and ``measured``."""

    test: str
    fault: str = ""
    workload: str = ""
    checked: list[str] = field(default_factory=list)
    measured: dict[str, str] = field(default_factory=dict)
    result: str = "not run"
    seconds: float = 0.0
    recorded_at: str = ""


def load() -> dict[str, dict]:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def save(run: FaultRun) -> None:
    """Record ``run``'s row; the file is locked meanwhile, since the suite's workers run tests side by side."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = load()
        rows[run.test] = asdict(run)
        RESULTS.write_text(json.dumps(dict(sorted(rows.items())), indent=2) + "\n")


# The invariants every fault test checks (tests/faults/invariants.py); the table names them once.
INVARIANTS = (
    "every stream gapless, hash chain valid",
    "no event id twice, each command stored once",
    "every due deadline enforced exactly once, with its true due_at",
    "fold(events) = workflow state query",
    "read models = fresh rebuild",
)


def table(rows: dict[str, dict]) -> str:
    lines = [
        "| Fault | Workload | Checked afterwards | Measured | Result |",
        "|---|---|---|---|---|",
    ]
    for row in rows.values():
        measured = "; ".join(f"{k}: {v}" for k, v in row["measured"].items())
        common = [c for c in row["checked"] if c in INVARIANTS]
        specific = [c for c in row["checked"] if c not in INVARIANTS]
        summary = ["all 5 invariants"] if len(common) == len(INVARIANTS) else common
        checked = "; ".join(summary + specific) or "—"
        result = f"{row['result']} ({row['seconds']:.0f} s, {row['recorded_at']})"
        lines.append(f"| {row['fault']} | {row['workload']} | {checked} | {measured} | {result} |")
    return "\n".join(lines)


def write_into_readme(text: str) -> None:
    readme = README.read_text()
    start, end = readme.index(START) + len(START), readme.index(END)
    README.write_text(readme[:start] + "\n" + text + "\n" + readme[end:])


def legend() -> str:
    return "The 5 invariants: " + "; ".join(INVARIANTS) + "."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--readme", action="store_true", help="publish: docs/reliability.json and the table in README.md"
    )
    args = parser.parse_args()
    rows = load()
    if not rows:
        raise SystemExit(f"no results in {RESULTS}: run the fault suite first (python -m tests tests/faults)")
    text = table(rows) + "\n\n" + legend()
    print(text)
    if args.readme:
        PUBLISHED.write_text(json.dumps(rows, indent=2) + "\n")
        write_into_readme(text)


if __name__ == "__main__":
    main()
