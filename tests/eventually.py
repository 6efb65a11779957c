"""``assert_eventually``: poll a condition instead of sleeping a guessed time."""

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
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
