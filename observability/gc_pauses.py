"""How long Python's full garbage collections stop the process (``escalations_gc_pause_seconds``).

A worker holding thousands of cached cases holds millions of objects. A full (generation 2) collection
walks all of them while no other Python code runs, so a deadline that falls due meanwhile is stored that
much later. The histogram puts such pauses beside the lateness they would cause; the spread benchmark
reads it from both sides' workers. Younger generations are collected thousands of times a second, each
in microseconds: the callback returns at once for them.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from observability import metrics

_started: float | None = None


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    """``gc.callbacks`` hook: time each full collection. It runs on the thread that triggered the collection,
    and the interpreter runs one collection at a time, so one start pairs with the next stop. The time
    includes finalizers run by the collection, during which other threads may run."""
    global _started
    if info.get("generation") != 2:
        return
    if phase == "start":
        _started = time.perf_counter()
    elif _started is not None:
        metrics.record_gc_pause(time.perf_counter() - _started)
        _started = None


def watch() -> None:
    """Time every full collection of this process from now on (once per process, however often called)."""
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)
