"""The benchmark's quick mode runs in the suite, so the benchmark code cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_bench_quick_prints_the_table_with_a_baseline(server_dsn: str) -> None:
    # Its own Temporal servers, as `make bench` starts them: one for the run, and one for each side of the
    # deadline scenarios (bench/dev_server.py, fresh_servers).
    env = {key: value for key, value in os.environ.items() if key not in ("TEMPORAL_ADDRESS", "TEMPORAL_METRICS_URL")}
    env["DATABASE_URL"] = server_dsn
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # Each scenario prints its rows as it ends; the whole table comes last, after the last header line.
    printed = done.stdout.splitlines()
    last_header = max(i for i, line in enumerate(printed) if line.startswith("scenario "))
    lines = printed[last_header + 1 :]
    for prefix, count in (
        ("command round trip", 2),
        ("projection lag", 2),
        ("full rebuild", 2),
        ("API command round trip", 5),  # p50 and p99; p50 against a bare update, its service, its update
        ("observability: command round trip", 4),
        ("POST /v1/escalations sustained", 2),  # against bare starts and against answered starts
        ("case open throughput", 1),
        ("event append", 2),
        ("burst", 6),
        ("spread", 16),  # the scale scenario's run of the spread scenario (quick runs spread only through it)
        ("worker peak RSS", 1),
        ("Temporal server RSS growth", 1),
        ("scale:", 2),  # its background workflows opened, and their workflow task timeouts
    ):
        rows = [line for line in lines if line.startswith(prefix)]
        assert len(rows) == count, done.stdout
        for row in rows:
            if "timeouts" in row or "garbage collections" in row or "server RSS growth" in row:
                # counts that are rightly zero in a few seconds on a quiet machine; the server's memory need
                # not grow for a few workflows
                continue
            ours, baseline, ratio = figures(row)
            assert ours > 0 and baseline > 0 and ratio > 0, row


def figures(row: str) -> tuple[float, float, float]:
    """A table row's ours, baseline and ratio: the first three figures in a row (the table prints them with two
    decimals, or nan), which the scenario's own words (integers, "3s") and the baseline's description after
    them cannot be mistaken for."""
    tokens = row.split()
    figure = re.compile(r"^(-?\d+\.\d\d|nan)$")
    for i in range(len(tokens) - 2):
        if all(figure.match(t) for t in tokens[i : i + 3]):
            ours, baseline, ratio = (float(t) for t in tokens[i : i + 3])
            return ours, baseline, ratio
    raise AssertionError(f"no ours, baseline and ratio in {row!r}")
