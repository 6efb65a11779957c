"""The Reliability table: each fault test records what it did and how it ended; this prints the table.

``python -m tests.faults.report`` prints it as Markdown; ``--readme`` also writes
it into README.md between the ``reliability`` markers. The rows come from
``docs/reliability.json``, which the fault tests rewrite on every run (a failed
test records its failure, so a stale pass never survives a red run).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "reliability.json"
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
    rows = load()
    rows[run.test] = asdict(run)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(dict(sorted(rows.items())), indent=2) + "\n")


def table(rows: dict[str, dict]) -> str:
    lines = [
        "| Fault | Workload | Checked afterwards | Measured | Result |",
        "|---|---|---|---|---|",
    ]
    for row in rows.values():
        measured = "; ".join(f"{k}: {v}" for k, v in row["measured"].items())
        checked = "; ".join(row["checked"]) or "—"
        result = f"{row['result']} ({row['seconds']:.0f} s, {row['recorded_at']})"
        lines.append(f"| {row['fault']} | {row['workload']} | {checked} | {measured} | {result} |")
    return "\n".join(lines)


def write_into_readme(text: str) -> None:
    readme = README.read_text()
    start, end = readme.index(START) + len(START), readme.index(END)
    README.write_text(readme[:start] + "\n" + text + "\n" + readme[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="also write the table into README.md")
    args = parser.parse_args()
    rows = load()
    if not rows:
        raise SystemExit(f"no results in {RESULTS}: run the fault suite first (python -m tests tests/faults)")
    text = table(rows)
    print(text)
    if args.readme:
        write_into_readme(text)


if __name__ == "__main__":
    main()
