"""``assert_eventually`` and ``assert_progressing``: poll a condition instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def assert_eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, timeout: float = 20.0, interval: float = 0.05
) -> T:
    """Return the first ``probe()`` value that passes ``check``; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {_shown(value)}")
        await asyncio.sleep(interval)


async def assert_progressing(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, stall: float = 30.0, interval: float = 0.2
) -> T:
    """Return the first ``probe()`` value that passes ``check``; fail once the value stops changing for ``stall`` s.

    For work whose length is the machine's business (a backlog draining on a busy machine): it may
    take as long as it keeps moving, and it fails as soon as it stops. Durations are benchmarks' job.
    """
    last = await probe()
    changed_at = time.monotonic()
    while not check(last):
        if time.monotonic() - changed_at > stall:
            raise AssertionError(f"no progress for {stall}s; last value: {_shown(last)}")
        await asyncio.sleep(interval)
        value = await probe()
        if value != last:
            last, changed_at = value, time.monotonic()
    return last


def _shown(value: object, limit: int = 2000) -> str:
    """The value's repr, cut short: a failure message must stay readable (a stream can be thousands of events)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"
