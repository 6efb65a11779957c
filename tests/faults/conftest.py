"""Fixtures for the fault suite: a log directory and the result row (a database of its own is ``own_db``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.faults.report import FaultRun, save


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_OUTCOME] = report
    return report


_OUTCOME = pytest.StashKey[pytest.TestReport]()


@pytest.fixture
def task_queue() -> str:
    return f"fault-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def fault_run(request: pytest.FixtureRequest) -> Iterator[FaultRun]:
    """The test's row in the Reliability table, saved with its outcome when the test ends."""
    run = FaultRun(test=request.node.name)
    started = time.monotonic()
    yield run
    report = request.node.stash.get(_OUTCOME, None)
    if report is None or report.skipped:
        return
    run.seconds = time.monotonic() - started
    run.recorded_at = datetime.now(UTC).strftime("%Y-%m-%d")
    crash = getattr(report.longrepr, "reprcrash", None)
    run.result = "pass" if report.passed else f"FAIL: {crash.message if crash else report.longrepr}"[:300]
    save(run)
