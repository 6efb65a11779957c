"""Deadlines spread over time, each side alone: our cases, then bare workflows.

Run side by side on one dev server, the two workers competed for it, and which side was late depended on
who polled harder, not on who did less work. So each side now runs alone, one after the other, under the
same load, each on a fresh dev server of its own with the same settings (or both on the one server named by
``TEMPORAL_ADDRESS``, each side's workflows ended after it): ``n`` cases opened evenly over ``span`` seconds,
each with one warning and one breach in the window (a one-level policy: the acknowledge deadline ``lead``
seconds after opening, its warning at the policy's fraction of it), against bare workflows that wake at the
same two instants and run one activity each (``BareSpec.wake_seconds``). Every deadline counts, not only the first.

Beside the lateness rows: each side's peak worker memory, the Temporal server's CPU seconds per 1,000
deadlines, each workflow's history (events and bytes, from a sample) and, when the server's metrics are
reachable, its persistence writes per workflow and its mutable-state cache misses.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench import profile as profiler
from bench.bare_worker import TABLE_SQL
from bench.baseline_workflows import BareDeadlineWorkflow, BareSpec
from bench.deadline_bench import GATE, CpuMeter, bench_opening, finish_workflows, with_p3_acknowledge
from bench.dev_server import BenchServer, ServerFactory
from bench.net import free_port
from bench.report import Row, percentile
from worker import Settings
from workflows.client import open_case
from workflows.core.events import stream_id_for
from workflows.core.policy import Policy
from workflows.core.vocabulary import Severity
from workflows.escalation_workflow import workflow_id_for
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

ROOT = Path(__file__).resolve().parent.parent
HISTORY_SAMPLE = 200  # workflows whose histories are read for the events, bytes and timeouts rows
# Workflow tasks the server may hold for a side's worker while the scale scenario opens its background
# workflows: starting them faster than the worker takes their first tasks only queues the tasks (the server
# persists a long backlog and hands it out slowly), and the measured deadlines would then wait behind it.
BACKLOG_LIMIT = 1000
WRITE_OPERATIONS = ("Create", "Update", "Append", "Delete", "Put", "Set", "Complete", "Range", "Insert", "Upsert")


def one_level_policy(lead: timedelta) -> Policy:
    """The default policy with a P3 acknowledged within ``lead`` and one escalation level (a valid policy:
    the level's breach repeats at the top, hours later, outside the window)."""
    policy = with_p3_acknowledge(load_policy(DEFAULT_POLICY_PATH), lead)
    escalation = policy.escalation.model_copy(update={"levels": policy.escalation.levels[:1]})
    return Policy.model_validate({**policy.content(), "escalation": json.loads(escalation.model_dump_json())})


async def _samples(http: httpx.AsyncClient, url: str) -> list[Sample]:
    """Every sample a Prometheus endpoint exposes now; ``httpx.HTTPError`` when it cannot be read."""
    text = (await http.get(url)).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


class ServerMetrics:
    """Counters from the Temporal server's Prometheus endpoint (``None``: not reachable, rows left out)."""

    def __init__(self, url: str | None) -> None:
        self.url = url

    async def snapshot(self) -> Counter[str] | None:
        if self.url is None:
            return None
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                samples = await _samples(http, self.url)
        except httpx.HTTPError:
            return None
        found: Counter[str] = Counter()
        for sample in samples:
            if sample.name in ("persistence_requests", "persistence_requests_total"):
                found["persistence requests"] += sample.value
                if sample.labels.get("operation", "").startswith(WRITE_OPERATIONS):
                    found["persistence writes"] += sample.value
            elif sample.name in ("cache_miss", "cache_miss_total"):
                found[f"{sample.labels.get('cache_type', 'other')} cache misses"] += sample.value
        return found


async def worker_gc(addresses: list[str]) -> Counter[str]:
    """The workers' full garbage collections so far (``escalations_gc_pause_seconds`` on each one's metrics
    endpoint), summed: how many, their seconds, and how many took more than 100 ms."""
    found: Counter[str] = Counter()
    async with httpx.AsyncClient(timeout=10) as http:
        for address in addresses:
            try:
                samples = await _samples(http, f"http://{address}/metrics")
            except httpx.HTTPError as exc:  # a worker gone: its rows read 0, the run's other rows stand
                print(f"worker metrics at {address} unreadable ({exc!r}); its garbage collections are not counted")
                continue
            for sample in samples:
                if sample.name == "escalations_gc_pause_seconds_count":
                    found["collections"] += sample.value
                    found["over 100 ms"] += sample.value
                elif sample.name == "escalations_gc_pause_seconds_sum":
                    found["seconds"] += sample.value
                elif sample.name == "escalations_gc_pause_seconds_bucket" and float(sample.labels["le"]) == 0.1:
                    found["over 100 ms"] -= sample.value
    return found


@dataclass
class TaskTimes:
    """Where a wake-up's time goes, from a sample of histories (milliseconds): the server firing the timer
    after it was due, the workflow task the firing scheduled waiting for a worker (schedule-to-start) and the
    worker running it (start-to-complete, the append included)."""

    timer_late: list[float] = field(default_factory=list)
    schedule_to_start: list[float] = field(default_factory=list)
    start_to_complete: list[float] = field(default_factory=list)
    # start-to-complete in two: up to the store's stamp on the append (ours: the events' recorded_at, taken just
    # before they queue for PostgreSQL; bare: its activity's clock before its insert), and from there on.
    start_to_stamp: list[float] = field(default_factory=list)
    stamp_to_complete: list[float] = field(default_factory=list)


def _stamp(payload: bytes) -> datetime | None:
    """The store's stamp in a local activity's result: our append's reply (receipts or events, or the list of
    events older histories hold) or the bare activity's clock; None for any other result (a lookup's)."""
    try:
        result = json.loads(payload)
    except ValueError:
        return None
    if isinstance(result, dict):
        result = result.get("receipts") or result.get("events")
    if isinstance(result, list) and result and isinstance(result[0], dict):
        result = result[0].get("recorded_at")
    try:
        return datetime.fromisoformat(result) if isinstance(result, str) else None
    except ValueError:
        return None


@dataclass
class Side:
    """What one side's run measured."""

    lateness_ms: list[float] = field(default_factory=list)
    peak_rss: int = 0
    # The Temporal server's resident memory when the side began (its first sample, the server just started
    # when it is the side's own) and at its highest during it: what the side cost the server is the growth.
    server_rss_at_start: int = 0
    server_peak_rss: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    server: Counter[str] | None = None
    history_events: float = 0.0
    history_bytes: float = 0.0
    task_timeouts: float = 0.0  # workflow task timeouts (sticky schedule-to-start or start-to-close) per workflow
    task_times: TaskTimes = field(default_factory=TaskTimes)
    gc: Counter[str] = field(default_factory=Counter)  # the workers' full garbage collections in the run
    prepare_seconds: float = 0.0  # opening the background workflows until their first tasks were all done
    # Workflow task timeouts per background workflow (a sample of their histories): a worker that takes more
    # tasks than it finishes within the task timeout sends them back to the end of the queue.
    prepare_task_timeouts: float = 0.0


def worker_process(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=log)


def server_rss(pid: int | None = None) -> int:
    """Resident bytes of the Temporal dev server process ``pid``, or of every one on this machine (0 when none is
    local)."""
    if pid is not None:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return 0
    total = 0
    for process in psutil.process_iter(["name", "memory_info"]):
        if process.info["name"] == "temporal" and process.info["memory_info"] is not None:
            total += process.info["memory_info"].rss
    return total


def _task_times(events: list, times: TaskTimes) -> None:
    """Add one history's wake-ups to ``times``: each timer's firing after it was due, and the workflow task
    that the firing scheduled (its schedule-to-start and start-to-complete). Other tasks (the opening's,
    with its lookups) are left out, so both sides' rows time the same thing: a deadline's wake-up."""
    by_id = {e.event_id: e for e in events}
    at = {e.event_id: e.event_time.ToDatetime() for e in events}
    woken: set[int] = set()  # the workflow tasks a timer's firing scheduled
    for previous, e in zip(events, events[1:], strict=False):
        if e.HasField("workflow_task_scheduled_event_attributes") and previous.HasField("timer_fired_event_attributes"):
            woken.add(e.event_id)
    started_woken: set[int] = set()
    for e in events:
        if e.HasField("timer_fired_event_attributes"):
            started = by_id[e.timer_fired_event_attributes.started_event_id]
            due = at[started.event_id] + started.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            times.timer_late.append((at[e.event_id] - due).total_seconds() * 1000)
        elif e.HasField("workflow_task_started_event_attributes"):
            scheduled = e.workflow_task_started_event_attributes.scheduled_event_id
            if scheduled in woken:
                started_woken.add(e.event_id)
                times.schedule_to_start.append((at[e.event_id] - at[scheduled]).total_seconds() * 1000)
        elif e.HasField("workflow_task_completed_event_attributes"):
            # (0 in histories exported without it: the task's start is then the event just before)
            started_id = e.workflow_task_completed_event_attributes.started_event_id or e.event_id - 1
            if started_id in started_woken:
                times.start_to_complete.append((at[e.event_id] - at[started_id]).total_seconds() * 1000)
                stamp = _task_stamp(events, e.event_id)
                if stamp is not None:
                    times.start_to_stamp.append((stamp - at[started_id]).total_seconds() * 1000)
                    times.stamp_to_complete.append((at[e.event_id] - stamp).total_seconds() * 1000)


def _task_stamp(events: list, completed_id: int) -> datetime | None:
    """The store's stamp in the first append recorded by the workflow task completed at ``completed_id`` (its
    commands follow that event, up to the next task), as a naive UTC time like the history's event times."""
    for e in events[completed_id:]:  # event ids count from 1: this slice starts just after the completion
        if e.HasField("workflow_task_scheduled_event_attributes"):
            return None
        if e.HasField("marker_recorded_event_attributes"):
            result = e.marker_recorded_event_attributes.details.get("result")
            stamp = _stamp(result.payloads[0].data) if result is not None and result.payloads else None
            if stamp is not None:
                return stamp.astimezone(UTC).replace(tzinfo=None)
    return None


async def workflow_backlog(client: Client, task_queue: str) -> int:
    """The workflow tasks waiting on ``task_queue`` for a worker (the server's approximate count)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        report_stats=True,
    )
    response = await client.workflow_service.describe_task_queue(request)
    return response.stats.approximate_backlog_count


async def start_as_fast_as_taken(
    client: Client,
    task_queue: str,
    start: Callable[[int], Awaitable[object]],
    count: int,
    after_chunk: Callable[[int], Awaitable[object]] | None = None,
) -> None:
    """Run ``start(i)`` for ``i`` in ``range(count)`` (``GATE`` at a time), as fast as the workers on ``task_queue``
    take the first tasks (the server's backlog for it kept under ``BACKLOG_LIMIT``); return once they have taken
    them all. ``after_chunk(started)`` runs after each chunk of ``BACKLOG_LIMIT // 2``."""
    gate = asyncio.Semaphore(GATE)

    async def one(i: int) -> None:
        async with gate:
            await start(i)

    chunk = BACKLOG_LIMIT // 2
    for first in range(0, count, chunk):
        while await workflow_backlog(client, task_queue) > BACKLOG_LIMIT - chunk:
            await asyncio.sleep(0.5)
        await asyncio.gather(*(one(i) for i in range(first, min(count, first + chunk))))
        if after_chunk is not None:
            await after_chunk(min(count, first + chunk))
    settled = 0  # the count is approximate: three readings of an empty backlog in a row
    while settled < 3:
        settled = settled + 1 if await workflow_backlog(client, task_queue) == 0 else 0
        await asyncio.sleep(0.5)


async def _histories(client: Client, workflow_ids: list[str]) -> tuple[float, float, float, TaskTimes]:
    """Mean events, bytes and workflow task timeouts of the histories of a sample of ``workflow_ids``, and
    their task times. A timeout is a task that waited for a worker that did not take it (a sticky queue's
    schedule-to-start) or did not finish it: each one is seconds of lateness, so the row catches their
    return."""
    sample = random.Random(7).sample(workflow_ids, min(HISTORY_SAMPLE, len(workflow_ids)))
    histories = await asyncio.gather(*(client.get_workflow_handle(w).fetch_history() for w in sample))
    events = [len(h.events) for h in histories]
    sizes = [sum(e.ByteSize() for e in h.events) for h in histories]
    timeouts = [sum(e.HasField("workflow_task_timed_out_event_attributes") for e in h.events) for h in histories]
    times = TaskTimes()
    for h in histories:
        _task_times(list(h.events), times)
    return sum(events) / len(events), sum(sizes) / len(sizes), sum(timeouts) / len(timeouts), times


async def _run_side(
    client: Client,
    processes: list[subprocess.Popen],
    start_one: Callable[[int], Awaitable[object]],
    deadlines: Callable[[], Awaitable[list[float]]],
    workflow_ids: list[str],
    n: int,
    span: float,
    lead: float,
    server: ServerMetrics,
    profile: Path | None = None,
    prepare: Callable[[], Awaitable[object]] | None = None,
    metrics_addresses: list[str] | None = None,
    prepared_ids: list[str] | None = None,
    server_pid: int | None = None,
) -> Side:
    """Run ``prepare`` (the scale scenario's background workflows, ``prepared_ids``), then open ``n`` workflows
    evenly over ``span`` with ``start_one``; wait for their ``2n`` deadlines (or until 60 s after the last is
    due); measure. Memory is sampled from the start, so the peak includes what ``prepare`` left open.
    ``server_pid``: the side's own server, the only one measured (``None``: every Temporal server here)."""
    side = Side()
    cpu = CpuMeter(
        {**{f"worker {i + 1}": p.pid for i, p in enumerate(processes)}, "benchmark client": os.getpid()},
        server_pid=server_pid,
    )
    gate = asyncio.Semaphore(GATE)

    def sample() -> None:
        cpu.sample()
        try:  # the workers' memory together
            side.peak_rss = max(side.peak_rss, sum(psutil.Process(p.pid).memory_info().rss for p in processes))
        except psutil.Error:
            pass
        server = server_rss(server_pid)
        side.server_rss_at_start = side.server_rss_at_start or server
        side.server_peak_rss = max(side.server_peak_rss, server)

    await asyncio.sleep(3)  # the worker connects and polls
    if prepare is not None:
        started = time.monotonic()
        preparing = asyncio.ensure_future(prepare())
        while not preparing.done():
            sample()
            await asyncio.sleep(1)
        await preparing
        side.prepare_seconds = time.monotonic() - started
        if prepared_ids:
            side.prepare_task_timeouts = (await _histories(client, prepared_ids))[2]
    profilers = (
        [profiler.record(p.pid, profile.with_suffix(f".{i}.txt")) for i, p in enumerate(processes)] if profile else []
    )
    before = await server.snapshot()
    gc_before = await worker_gc(metrics_addresses) if metrics_addresses else Counter()
    t0 = time.monotonic()

    async def start(i: int) -> None:
        await asyncio.sleep(max(0.0, t0 + i * span / n - time.monotonic()))
        async with gate:
            await start_one(i)

    starter = asyncio.gather(*(start(i) for i in range(n)))
    while not starter.done():
        sample()
        await asyncio.sleep(1)
    await starter
    end = time.monotonic() + lead + 60
    while time.monotonic() < end:
        sample()
        side.lateness_ms = await deadlines()
        if len(side.lateness_ms) >= 2 * n:
            break
        await asyncio.sleep(1)
    sample()
    print(cpu.report())
    for i, spy in enumerate(profilers):
        profiler.stop(spy)
        assert profile is not None
        print(f"profile of worker {i + 1} ({profile.with_suffix(f'.{i}.txt')}):")
        print(profiler.top(profile.with_suffix(f".{i}.txt")))
    side.cpu = cpu.used()
    if metrics_addresses:  # during the measured openings and deadlines only, as the server's counters
        side.gc = await worker_gc(metrics_addresses)
        side.gc.subtract(gc_before)
    after = await server.snapshot()
    if before is not None and after is not None:
        side.server = after - before
    side.history_events, side.history_bytes, side.task_timeouts, side.task_times = await _histories(
        client, workflow_ids
    )
    for process in processes:
        if process.poll() is not None:
            raise RuntimeError(f"a worker exited during the run (status {process.returncode}); see its log")
    return side


async def spread_each_alone(
    servers: ServerFactory,
    pool: asyncpg.Pool,
    dsn: str,
    n: int,
    span: float,
    lead: float,
    workers: int = 1,
    profile: Path | None = None,
    background: int = 0,
) -> list[Row]:
    """Our cases alone, then bare workflows alone, under the same schedule, each side on the server ``servers``
    gives it (a fresh one each, or one shared: then each side's workflows are ended after it); each side with
    ``workers`` worker processes, profiled with py-spy into ``profile``-named files when given.

    ``background``: workflows opened on each side before its measured ones, whose deadlines are a day away
    (the scale scenario: many open cases, a few falling due). Both sides' workers keep production's workflow
    cache (``worker.Settings``), whose size sets their garbage-collection pauses."""
    async with pool.acquire() as conn:
        await conn.execute(TABLE_SQL)
    policy = one_level_policy(timedelta(seconds=lead))
    warning_lead = lead * (1 - policy.warning_at)  # the warning falls this long before the deadline
    folder = Path(tempfile.mkdtemp(prefix="esc-bench-"))
    policy_file = folder / "policy.json"
    policy_file.write_text(json.dumps(policy.content()))
    queue = f"bench-spread-{uuid.uuid4().hex[:8]}"

    def worker_env(server: BenchServer, metrics_address: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": dsn,
            "TEMPORAL_ADDRESS": server.client.service_client.config.target_host,
            "ESCALATIONS_LOG_LEVEL": "WARNING",
            "ESCALATIONS_TASK_QUEUE": queue,
            "ESCALATIONS_POLICY": str(policy_file),
            "BARE_TASK_QUEUE": queue + "-bare",
            "ESCALATIONS_MAX_CACHED_WORKFLOWS": str(Settings.max_cached_workflows),
            "ESCALATIONS_METRICS_ADDRESS": metrics_address,
        }

    case_ids = [f"spread-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    bare_ids = [f"bare-spread-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    quiet_case_ids = [f"spread-quiet-{uuid.uuid4().hex[:12]}" for _ in range(background)]
    quiet_bare_ids = [f"bare-spread-quiet-{uuid.uuid4().hex[:12]}" for _ in range(background)]
    day = 24 * 3600.0
    client: Client  # the side's server's client, set as each side starts

    async def open_quiet_ours() -> None:
        # sev4 x enterprise: P4, acknowledged within a day; nothing of theirs falls due in the run.
        async def one(i: int) -> None:
            opening = bench_opening(quiet_case_ids[i]).model_copy(update={"severity": Severity.SEV4})
            await open_case(client, opening, task_queue=queue)

        await start_as_fast_as_taken(client, queue, one, background)

    async def start_quiet_bare() -> None:
        async def one(i: int) -> None:
            spec = BareSpec(wake_seconds=[0.75 * day, day])
            await client.start_workflow(
                BareDeadlineWorkflow.run, spec, id=quiet_bare_ids[i], task_queue=queue + "-bare"
            )

        await start_as_fast_as_taken(client, queue + "-bare", one, background)

    async def our_deadlines() -> list[float]:
        rows = await pool.fetch(
            "SELECT event_type, (body::jsonb #>> '{data,due_at}')::timestamptz AS due_at, recorded_at FROM events "
            "WHERE stream_id = ANY($1::text[]) "
            "AND event_type IN ('escalation.deadline_warning', 'escalation.deadline_breached')",
            [stream_id_for(c) for c in case_ids],
        )
        late = []
        for r in rows:
            warning = r["event_type"] == "escalation.deadline_warning"
            instant = r["due_at"] - timedelta(seconds=warning_lead) if warning else r["due_at"]
            late.append((r["recorded_at"] - instant).total_seconds() * 1000)
        return late

    async def bare_deadlines() -> list[float]:
        rows = await pool.fetch(
            "SELECT due_at, stored_at FROM bench_bare_deadlines WHERE workflow_id = ANY($1)", bare_ids
        )
        return [(r["stored_at"] - r["due_at"]).total_seconds() * 1000 for r in rows]

    async def open_ours(i: int) -> None:
        await open_case(client, bench_opening(case_ids[i]), task_queue=queue)

    async def start_bare(i: int) -> None:
        spec = BareSpec(wake_seconds=[lead - warning_lead, lead])
        await client.start_workflow(BareDeadlineWorkflow.run, spec, id=bare_ids[i], task_queue=queue + "-bare")

    async def alone(
        name: str,
        argv: list[str],
        start_one: Callable[[int], Awaitable[object]],
        deadlines: Callable[[], Awaitable[list[float]]],
        measured_ids: list[str],
        prepare: Callable[[], Awaitable[object]],
        prepared_ids: list[str],
    ) -> Side:
        """One side on the server ``servers`` gives it, with ``workers`` processes of ``argv`` (workflow ids)."""
        nonlocal client
        async with servers() as server:
            client = server.client
            # Each worker serves its metrics (its full garbage collections, both sides) on a port of its own.
            metrics = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
            processes = [
                worker_process(argv, worker_env(server, address), folder / f"{name}-{i}.log")
                for i, address in enumerate(metrics)
            ]
            try:
                return await _run_side(
                    client,
                    processes,
                    start_one,
                    deadlines,
                    measured_ids,
                    n,
                    span,
                    lead,
                    ServerMetrics(server.metrics_url),
                    profile.with_name(f"{profile.name}-{name}") if profile else None,
                    prepare if background else None,
                    metrics,
                    prepared_ids,
                    server.pid,
                )
            finally:
                if not server.fresh:  # a fresh server's workflows go with it
                    await finish_workflows(client, [], measured_ids + prepared_ids)
                _stop(processes)

    ours = await alone(
        "ours",
        [sys.executable, str(ROOT / "worker.py")],
        open_ours,
        our_deadlines,
        [workflow_id_for(c) for c in case_ids],
        open_quiet_ours,
        [workflow_id_for(c) for c in quiet_case_ids],
    )
    bare = await alone(
        "bare",
        [sys.executable, "-m", "bench.bare_worker"],
        start_bare,
        bare_deadlines,
        bare_ids,
        start_quiet_bare,
        quiet_bare_ids,
    )
    return _rows(n, span, workers, ours, bare, background)


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=60)


def _rows(n: int, span: float, workers: int, ours: Side, bare: Side, background: int = 0) -> list[Row]:
    base = "bare workflows alone: 2 sleeps, 2 activities"
    scope = (
        f"{n} over {span:g}s, each alone"
        + (f", {background} more open" if background else "")
        + (f", {workers} workers each" if workers > 1 else "")
    )
    label = f"spread: {scope}"
    if not ours.lateness_ms or not bare.lateness_ms:
        raise RuntimeError(
            f"{label}: no deadlines were enforced ({len(ours.lateness_ms)} ours, {len(bare.lateness_ms)})"
        )
    deadlines = 2 * n
    on_time = [sum(1 for ms in side.lateness_ms if ms <= 60_000) for side in (ours, bare)]
    server_cpu = [side.cpu.get("Temporal dev server", 0.0) * 1000 / deadlines for side in (ours, bare)]
    mib = 1024 * 1024
    rows = [
        Row(f"{label}: enforced within due + 60 s (of {deadlines})", "count", on_time[0], on_time[1], base, True),
        Row(
            f"{label}: stored - due p50", "ms", percentile(ours.lateness_ms, 50), percentile(bare.lateness_ms, 50), base
        ),
        Row(
            f"{label}: stored - due p99", "ms", percentile(ours.lateness_ms, 99), percentile(bare.lateness_ms, 99), base
        ),
        Row(f"{label}: stored - due max", "ms", max(ours.lateness_ms), max(bare.lateness_ms), base),
        Row(f"{label}: server CPU per 1,000 deadlines", "CPU s", server_cpu[0], server_cpu[1], base),
        Row(f"{label}: history events per workflow", "events", ours.history_events, bare.history_events, base),
        Row(f"{label}: history size per workflow", "KiB", ours.history_bytes / 1024, bare.history_bytes / 1024, base),
        Row(
            f"{label}: workflow task timeouts per 1,000 workflows",
            "count",
            ours.task_timeouts * 1000,
            bare.task_timeouts * 1000,
            base,
        ),
        *(
            Row(
                f"{label}: {what} p99 (histories of {min(HISTORY_SAMPLE, n)})",
                "ms",
                percentile(getattr(ours.task_times, name), 99),
                percentile(getattr(bare.task_times, name), 99),
                base,
            )
            for name, what in (
                ("timer_late", "timer fired - due"),
                ("schedule_to_start", "wake-up task schedule-to-start"),
                ("start_to_complete", "wake-up task start-to-complete"),
                ("start_to_stamp", "wake-up task start to the append's stamp"),
                ("stamp_to_complete", "wake-up task append's stamp to complete"),
            )
        ),
        *(
            Row(f"{label}: worker full garbage collections, {what}", unit, ours.gc[name], bare.gc[name], base)
            for name, what, unit in (
                ("collections", "how many", "count"),
                ("seconds", "time stopped", "s"),
                ("over 100 ms", "those over 100 ms", "count"),
            )
        ),
        Row(
            f"worker peak RSS with {n + background} open cases",
            "MiB",
            ours.peak_rss / mib,
            bare.peak_rss / mib,
            f"bare worker, {n + background} open bare workflows",
        ),
        *(
            [
                Row(
                    f"scale: {background} background workflows opened and first tasks taken",
                    "per s",
                    background / ours.prepare_seconds,
                    background / bare.prepare_seconds,
                    base,
                    higher_is_better=True,
                ),
                Row(
                    f"scale: {background} background workflows: workflow task timeouts per 1,000 "
                    f"(histories of {min(HISTORY_SAMPLE, background)})",
                    "count",
                    ours.prepare_task_timeouts * 1000,
                    bare.prepare_task_timeouts * 1000,
                    base,
                ),
            ]
            if background
            else []
        ),
        Row(
            f"Temporal server RSS growth during the side ({n + background} workflows)",
            "MiB",
            (ours.server_peak_rss - ours.server_rss_at_start) / mib,
            (bare.server_peak_rss - bare.server_rss_at_start) / mib,
            base,
        ),
    ]
    if ours.server is not None and bare.server is not None:
        for name in ("persistence writes", "mutablestate cache misses", "events cache misses"):
            if ours.server[name] or bare.server[name]:
                rows.append(
                    Row(
                        f"server: {name} per workflow ({scope})",
                        "count",
                        ours.server[name] / n,
                        bare.server[name] / n,
                        base,
                    )
                )
    return rows
