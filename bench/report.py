"""The benchmark table: scenario, our figure, the baseline measured in the same run, the ratio."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    scenario: str
    unit: str
    ours: float
    baseline: float
    baseline_name: str
    higher_is_better: bool = False

    @property
    def ratio(self) -> float:
        """ours / baseline: below 1 is better for times, above 1 for rates."""
        return self.ours / self.baseline if self.baseline else float("nan")


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank); nan for no samples (the row shows it, the run goes on)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def print_table(rows: list[Row]) -> None:
    width = max(len(r.scenario) for r in rows)
    base = max(len(r.baseline_name) for r in rows)
    print(f"{'scenario':<{width}}  {'ours':>10}  {'baseline':>10}  {'ratio':>6}  {'unit':<8}  baseline is")
    for r in rows:
        print(
            f"{r.scenario:<{width}}  {r.ours:>10.2f}  {r.baseline:>10.2f}  {r.ratio:>6.2f}  {r.unit:<8}  {r.baseline_name:<{base}}"
        )


def write_json(rows: list[Row], path: Path) -> None:
    path.write_text(json.dumps([{**asdict(r), "ratio": r.ratio} for r in rows], indent=2) + "\n")
