"""A sampling profile of a worker process during a scenario (py-spy), and what it spent its time in.

``profiled(folder, name)`` profiles the benchmark's own process (where the in-process scenarios run their
workers, API and client) for the length of a ``with`` block and prints the summary. ``record(pid, path)`` starts ``py-spy record`` on the process without pausing it (``--nonblocking``), in
py-spy's collapsed-stack format; ``stop`` ends it (py-spy writes its file on SIGINT); ``top`` sums the
samples per innermost frame (self time) and per frame anywhere on the stack (inclusive time).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def record(pid: int, path: Path, rate: int = 50) -> subprocess.Popen:
    # The venv's own first: the benchmark is often run as .venv/bin/python, with the venv not on PATH.
    beside = Path(sys.executable).with_name("py-spy")
    spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed (it comes with the dev extras: make install)")
    argv = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--output", str(path)]
    return subprocess.Popen([*argv, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(profiler: subprocess.Popen) -> None:
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()


def top(path: Path, n: int = 12) -> str:
    """The ``n`` frames with the most self samples and the ``n`` with the most inclusive samples."""
    if not path.exists():
        return f"(no profile at {path})"
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[frames[-1]] += samples
        for frame in set(frames):
            anywhere[frame] += samples
    if not total:
        return f"(no samples in {path})"
    lines = [f"{total} samples; self time:"]
    lines += [f"  {100 * c / total:5.1f}%  {frame}" for frame, c in own.most_common(n)]
    lines.append("inclusive time:")
    lines += [f"  {100 * c / total:5.1f}%  {frame}" for frame, c in anywhere.most_common(n)]
    return "\n".join(lines)


@contextlib.contextmanager
def profiled(folder: Path | None, name: str) -> Iterator[None]:
    """Profile this process into ``folder/name.txt`` while the block runs, then print ``top``; nothing when
    ``folder`` is None."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.txt"
    profiler = record(os.getpid(), path)
    try:
        yield
    finally:
        stop(profiler)
        print(f"profile of the benchmark process during {name} ({path}):\n{top(path)}", flush=True)
