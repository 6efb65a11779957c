"""The order the suite runs in: the long test files first, shared between the two halves of the collection.

``make test`` runs two pytest-xdist workers with ``--dist worksteal``: each worker is first sent one
contiguous half of the collected tests, and a worker that runs out steals from the end of the other's
queue. In collection order the long files (the fault suite, the 10,000-case metrics, the property test)
sit wherever their names put them; one started last keeps a worker busy for a minute or two while the
other has nothing left to steal. Here every long file goes to the front of one half or the other, taken
in turn, so both workers start with long work and the short tests fill the end, where stealing balances
them. A file stays whole (its module-scoped fixtures are set up once), and the order within a file is kept.

Which tests run is not changed, only their order; without xdist the run is the same set, long files first.
"""

from __future__ import annotations

import pytest

# Long files that are not marked slow (``make test-fast`` keeps them).
LONG_UNMARKED = ("tests/test_domain_properties.py",)


def _is_long(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None or item.nodeid.split("::")[0] in LONG_UNMARKED


def long_files_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with each long file at the front of one half of the list, alternating (see the module doc)."""
    long_files: dict[str, list[pytest.Item]] = {}
    short: list[pytest.Item] = []
    for item in items:
        if _is_long(item):
            long_files.setdefault(item.nodeid.split("::")[0], []).append(item)
        else:
            short.append(item)
    halves: list[list[pytest.Item]] = [[], []]
    for index, file_items in enumerate(long_files.values()):
        halves[index % 2].extend(file_items)
    # The first worker is sent len // 2 tests: the first half is topped up with short tests to that length.
    room = max(0, len(items) // 2 - len(halves[0]))
    return halves[0] + short[:room] + halves[1] + short[room:]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ordered = long_files_first(items)
    assert sorted(i.nodeid for i in ordered) == sorted(i.nodeid for i in items), "ordering lost or added a test"
    items[:] = ordered
