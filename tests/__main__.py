"""``python -m tests``: run pytest and exit with pytest's own status, whatever happens at exit.

* Exit status 5 (nothing collected) is turned into a failure: a suite that ran
  no test must never pass.
* The tests that failed are named again on the last lines, after the summary:
  CI keeps only the tail of the output, and a red run must say what was red.
* The Temporal SDK can abort the interpreter at exit (sdk-python#300), which
  would turn a green run red (or hide a red one). So the status is decided
  here, output is flushed, and the process leaves with ``os._exit(status)``.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

NO_TESTS_COLLECTED = 5


class FailureNames:
    """Collects the node ids of failed tests (setup, call or teardown) as pytest reports them."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed and report.nodeid not in self.failed:
            self.failed.append(report.nodeid)


def main() -> None:
    started = time.monotonic()
    failures = FailureNames()
    status = int(pytest.main(sys.argv[1:], plugins=[failures]))
    for nodeid in failures.failed:
        print(f"tests: failed: {nodeid}", file=sys.stderr)
    if status == NO_TESTS_COLLECTED:
        print("tests: pytest collected no tests; treating that as a failure", file=sys.stderr)
        status = 1
    print(f"tests: pytest exit status {status}, wall time {time.monotonic() - started:.1f}s", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
