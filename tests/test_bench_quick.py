"""The benchmark's quick mode runs in the suite, so the benchmark code cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_bench_quick_prints_the_table_with_a_baseline(dev_env: WorkflowEnvironment, server_dsn: str) -> None:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "DATABASE_URL": server_dsn,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=280
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    for prefix, count in (
        ("command round trip", 2),
        ("projection lag", 2),
        ("full rebuild", 1),
        ("API command round trip", 2),
        ("observability: command round trip", 4),
        ("POST /v1/escalations sustained", 1),
        ("case open throughput", 1),
        ("event append", 2),
        ("burst", 6),
        ("spread", 16),  # the scale scenario's run of the spread scenario (quick runs spread only through it)
        ("worker peak RSS", 1),
    ):
        rows = [line for line in lines if line.startswith(prefix)]
        assert len(rows) == count, done.stdout
        for row in rows:
            if "timeouts" in row:
                continue  # a count that is rightly zero on a quiet machine
            # columns: scenario..., ours, baseline, ratio, unit, baseline description...
            numbers = [float(x) for x in row.split() if x.replace(".", "", 1).isdigit()]
            ours, baseline, ratio = numbers[-3:]
            assert ours > 0 and baseline > 0 and ratio > 0, row
