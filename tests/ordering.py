"""The order the suite runs in: the long test files first, shared between the chunks the workers start with.

``make test`` runs pytest-xdist workers with ``--dist worksteal``: each worker is first sent one contiguous
chunk of the collected tests (an equal share, in collection order), and a worker that runs out steals from
the end of another's queue. In collection order the long files (the fault suite, the 10,000-case metrics,
the property test) sit wherever their names put them; one started last keeps a worker busy for a minute or
two while the others have nothing left to steal. Here the long files go to the fronts of the chunks, dealt
in turn, so every worker starts with long work and the short tests fill the ends, where stealing balances
them. A file stays whole (its module-scoped fixtures are set up once); the order within a file is kept.

Which tests run is not changed, only their order; without xdist the run is the same set, long files first.
"""

from __future__ import annotations

import os

import pytest

# Long files that are not marked slow (``make test-fast`` keeps them).
LONG_UNMARKED = ("tests/test_domain_properties.py",)


def _is_long(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None or item.nodeid.split("::")[0] in LONG_UNMARKED


def chunk_sizes(count: int, workers: int) -> list[int]:
    """How many tests worksteal sends each worker first: ``count // remaining`` to each in turn."""
    sizes = []
    for remaining in range(workers, 0, -1):
        sizes.append(count // remaining)
        count -= sizes[-1]
    return sizes


def long_files_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """``items`` with each long file at the front of one worker's first chunk, dealt in turn (module doc)."""
    long_files: dict[str, list[pytest.Item]] = {}
    short: list[pytest.Item] = []
    for item in items:
        if _is_long(item):
            long_files.setdefault(item.nodeid.split("::")[0], []).append(item)
        else:
            short.append(item)
    chunks: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for index, file_items in enumerate(long_files.values()):
        chunks[index % workers].extend(file_items)
    ordered: list[pytest.Item] = []
    for chunk, size in zip(chunks, chunk_sizes(len(items), workers), strict=True):
        room = max(0, size - len(chunk))  # topped up with short tests to the size the worker is sent
        ordered += chunk + short[:room]
        short = short[room:]
    return ordered + short


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Set by pytest-xdist in each worker; 1 without it.
    ordered = long_files_first(items, max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    assert sorted(i.nodeid for i in ordered) == sorted(i.nodeid for i in items), "ordering lost or added a test"
    items[:] = ordered
