"""Scenarios: case open throughput, a burst of deadlines at one instant, event append; and what the deadline
scenarios share (the bench's opening command and policy, finishing their workflows, the CPU meter).

Each figure sits beside a baseline measured in the same run on the same servers:
bare workflows (``bench.bare_worker``) that sleep until the same instants and run one
activity; a plain asyncpg insert of the same rows into an unconstrained table.
(The spread scenario, each side alone, is ``bench.spread_bench``.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import psutil
from temporalio.client import Client

from bench.bare_worker import TABLE_SQL, bare_worker
from bench.baseline_workflows import BareDeadlineWorkflow, BareSpec
from bench.report import Row, percentile
from events.store import EventStore
from samples.histories import generate_case
from worker import build_worker
from workflows.client import open_case
from workflows.core.commands import OpenEscalation
from workflows.core.events import Customer, stream_id_for
from workflows.core.policy import Policy, PriorityRules
from workflows.core.vocabulary import Category, CustomerTier, LifecycleStage, Role, Severity, SourceKind
from workflows.escalation_workflow import workflow_id_for
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

ROOT = Path(__file__).resolve().parent.parent
GATE = 32  # starts in flight at once


def bench_opening(case_id: str) -> OpenEscalation:
    # sev3 x enterprise -> P3, the priority the bench policies shape.
    return OpenEscalation(
        actor={"id": "bench", "role": Role.SERVICE},
        idempotency_key=f"open-{case_id}",
        case_id=case_id,
        customer=Customer(id="bench-co", name="Bench Co", tier=CustomerTier.ENTERPRISE),
        category=Category.TECHNICAL,
        lifecycle_stage=LifecycleStage.ONGOING_SUPPORT,
        severity=Severity.SEV3,
        title="Deadline benchmark",
        description="Opened by the deadline benchmark.",
        source=SourceKind.SERVICE,
    )


def with_p3_acknowledge(policy: Policy, acknowledge: timedelta) -> Policy:
    rules: PriorityRules = policy.priorities["P3"].model_copy(update={"acknowledge": acknowledge})
    return policy.model_copy(update={"priorities": {**policy.priorities, "P3": rules}})


async def _ack_breaches(pool: asyncpg.Pool, case_ids: list[str]) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            """SELECT stream_id, (body::jsonb #>> '{data,due_at}')::timestamptz AS due_at,
                      (body::jsonb #>> '{data,detected_at}')::timestamptz AS detected_at, recorded_at
                 FROM events
                WHERE stream_id = ANY($1::text[]) AND event_type = 'escalation.deadline_breached'
                  AND body::jsonb #>> '{data,kind}' = 'acknowledge' AND (body::jsonb #>> '{data,level}')::int = 1""",
            [stream_id_for(c) for c in case_ids],
        )


async def _bare_rows(pool: asyncpg.Pool, ids: list[str]) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT workflow_id, due_at, detected_at, stored_at FROM bench_bare_deadlines WHERE workflow_id = ANY($1)",
            ids,
        )


async def _wait_for(probe, count: int, timeout: float, every: float = 0.5) -> list:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        rows = await probe()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(every)


async def finish_workflows(client: Client, case_ids: list[str], bare_ids: list[str]) -> None:
    """End our cases' workflows and the bare ones (workflow ids), so nothing a scenario opened stays open.

    Terminated by the server, not signalled to finish: a signal schedules a workflow task that only a worker
    can take, and the scenarios stop their workers right after. Signalled, about 1,940 bare workflows stayed
    open on the run's server, which then used a tenth of a core under every later scenario."""
    gate = asyncio.Semaphore(64)

    async def end(workflow_id: str) -> None:
        async with gate:
            try:
                await client.get_workflow_handle(workflow_id).terminate("benchmark done")
            except Exception:  # noqa: BLE001 - already gone
                pass

    await asyncio.gather(*(end(workflow_id_for(c)) for c in case_ids), *(end(b) for b in bare_ids))


def _lateness_rows(label: str, ours: list[asyncpg.Record], bare: list[asyncpg.Record], n: int) -> list[Row]:
    detected = [(r["detected_at"] - r["due_at"]).total_seconds() * 1000 for r in ours]
    stored = [(r["recorded_at"] - r["due_at"]).total_seconds() * 1000 for r in ours]
    b_detected = [(r["detected_at"] - r["due_at"]).total_seconds() * 1000 for r in bare]
    b_stored = [(r["stored_at"] - r["due_at"]).total_seconds() * 1000 for r in bare]
    base = "bare sleep + 1 activity"
    if not detected or not b_detected:
        raise RuntimeError(f"{label}: no deadlines were enforced ({len(detected)} ours, {len(b_detected)} bare)")
    return [
        Row(f"{label}: enforced (ours/bare of {n})", "count", len(ours), len(bare), "deadlines enforced", True),
        Row(f"{label}: stored - due p50", "ms", percentile(stored, 50), percentile(b_stored, 50), base),
        Row(f"{label}: stored - due p99", "ms", percentile(stored, 99), percentile(b_stored, 99), base),
        Row(f"{label}: stored - due max", "ms", max(stored), max(b_stored), base),
        Row(f"{label}: detected - due p99", "ms", percentile(detected, 99), percentile(b_detected, 99), base),
    ]


class CpuMeter:
    """CPU seconds used by each group of processes on this machine, from the first sample to the last.

    This is the profile behind the spread figures: on two cores, whoever else
    needs the CPU (the Temporal server, PostgreSQL, the client opening cases)
    sets how promptly either worker can run.
    """

    def __init__(self, named: dict[str, int], server_pid: int | None = None) -> None:
        """``named``: role by process id (the processes we started); ``server_pid``: the one Temporal server to
        count (``None``: every ``temporal`` process here)."""
        self._named = {pid: role for role, pid in named.items()}
        self._server_pid = server_pid
        self._first: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._sampled = False
        self._t0 = self._t1 = time.monotonic()

    def _role(self, pid: int, name: str) -> str | None:
        if pid in self._named:
            return self._named[pid]
        if name == "temporal":
            return "Temporal dev server" if self._server_pid in (None, pid) else None
        if name.startswith("postgres"):
            return "PostgreSQL"
        return None

    def sample(self) -> None:
        now = time.monotonic()
        for proc in psutil.process_iter(["name", "cpu_times"]):
            role = self._role(proc.pid, proc.info["name"] or "")
            times = proc.info["cpu_times"]
            if role is None or times is None:
                continue
            used = times.user + times.system
            # A process seen at the first sample counts from then; a later one from its start.
            self._first.setdefault(proc.pid, used if not self._sampled else 0.0)
            self._last[proc.pid] = (role, used)
        if not self._sampled:
            self._t0, self._sampled = now, True
        self._t1 = now

    def used(self) -> dict[str, float]:
        """CPU seconds per role between the first sample and the last."""
        by_role: dict[str, float] = {}
        for pid, (role, used) in self._last.items():
            by_role[role] = by_role.get(role, 0.0) + used - self._first[pid]
        return by_role

    def report(self) -> str:
        wall = max(1e-9, self._t1 - self._t0)
        cores = psutil.cpu_count() or 1
        by_role = self.used()
        lines = [f"CPU used during the scenario ({wall:.0f} s x {cores} cores = {wall * cores:.0f} CPU s):"]
        for role, used in sorted(by_role.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {role:<22} {used:8.1f} CPU s  {100 * used / (wall * cores):5.1f}% of the machine")
        return "\n".join(lines)


async def burst(client: Client, pool: asyncpg.Pool, n: int, lead: float) -> list[Row]:
    """Scenario 4: n deadlines at the same instant; every one enforced exactly once.

    Each side alone, ours first: its cases are opened, their one instant passes and every breach is stored
    before the bare workflows are started for an instant of their own, so neither side's worker competes with
    the other's for the process, the server or the database (side by side, which side was late depended on
    which polled harder)."""
    async with pool.acquire() as conn:
        await conn.execute(TABLE_SQL)
    base = load_policy(DEFAULT_POLICY_PATH)
    case_ids = [f"burst-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    bare_ids = [f"bare-burst-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    gate = asyncio.Semaphore(GATE)
    try:
        instant = datetime.now(UTC) + timedelta(seconds=lead)
        # The policy in force at each opening sets the acknowledge span so every deadline is `instant`.
        worker_policy = lambda: with_p3_acknowledge(base, instant - datetime.now(UTC))  # noqa: E731
        queue = f"bench-burst-{uuid.uuid4().hex[:8]}"
        ours_worker = build_worker(client, EventStore(pool), worker_policy, task_queue=queue)
        async with ours_worker:

            async def open_one(case_id: str) -> None:
                async with gate:
                    await open_case(client, bench_opening(case_id), task_queue=queue)

            await asyncio.gather(*(open_one(c) for c in case_ids))
            if datetime.now(UTC) > instant:
                raise RuntimeError(f"burst: opening {n} cases took longer than the {lead}s lead; raise it")
            ours = await _wait_for(lambda: _ack_breaches(pool, case_ids), n, lead + 120)
        await finish_workflows(client, case_ids, [])  # the bare side's server holds none of ours open
        bare_instant = datetime.now(UTC) + timedelta(seconds=lead)
        async with bare_worker(client, pool, queue + "-bare"):  # production's cache, as ours

            async def start_one(workflow_id: str) -> None:
                async with gate:
                    await client.start_workflow(
                        BareDeadlineWorkflow.run,
                        BareSpec(due_at=bare_instant),
                        id=workflow_id,
                        task_queue=queue + "-bare",
                    )

            await asyncio.gather(*(start_one(b) for b in bare_ids))
            if datetime.now(UTC) > bare_instant:
                raise RuntimeError(f"burst: starting {n} bare workflows took longer than the {lead}s lead; raise it")
            bare = await _wait_for(lambda: _bare_rows(pool, bare_ids), n, lead + 120)
            await finish_workflows(client, [], bare_ids)
        per_case = {}
        for r in ours:
            per_case[r["stream_id"]] = per_case.get(r["stream_id"], 0) + 1
        exactly_once = sum(1 for c in case_ids if per_case.get(stream_id_for(c)) == 1)
        rows = _lateness_rows(f"burst {n} at one instant", ours, bare, n)
        rows.insert(
            1,
            Row(
                f"burst: enforced exactly once (of {n})", "count", exactly_once, len(bare), "bare: recorded once", True
            ),
        )
        return rows
    finally:
        await finish_workflows(client, case_ids, bare_ids)


async def open_throughput(client: Client, pool: asyncpg.Pool, n: int) -> list[Row]:
    """Scenario 1: cases/s until each opening event is stored vs bare workflows that run one activity."""
    async with pool.acquire() as conn:
        await conn.execute(TABLE_SQL)
    queue = f"bench-open-{uuid.uuid4().hex[:8]}"
    case_ids = [f"open-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    bare_ids = [f"bare-open-{uuid.uuid4().hex[:12]}" for _ in range(n)]
    gate = asyncio.Semaphore(GATE)
    ours_worker = build_worker(client, EventStore(pool), load_policy(DEFAULT_POLICY_PATH), task_queue=queue)

    async def opened() -> list:
        async with pool.acquire() as conn:
            return await conn.fetch(
                "SELECT 1 FROM events WHERE stream_id = ANY($1::text[]) AND version = 1",
                [stream_id_for(c) for c in case_ids],
            )

    try:
        async with ours_worker, bare_worker(client, pool, queue + "-bare"):

            async def start_ours(case_id: str) -> None:
                async with gate:
                    await open_case(client, bench_opening(case_id), task_queue=queue)

            async def start_bare(workflow_id: str) -> None:
                async with gate:
                    await client.start_workflow(
                        BareDeadlineWorkflow.run, BareSpec(lead_seconds=0), id=workflow_id, task_queue=queue + "-bare"
                    )

            t = time.perf_counter()
            await asyncio.gather(*(start_ours(c) for c in case_ids))
            await _wait_for(opened, n, 300, every=0.05)
            ours_rate = n / (time.perf_counter() - t)
            t = time.perf_counter()
            await asyncio.gather(*(start_bare(b) for b in bare_ids))
            await _wait_for(lambda: _bare_rows(pool, bare_ids), n, 300, every=0.05)
            bare_rate = n / (time.perf_counter() - t)
    finally:
        await finish_workflows(client, case_ids, bare_ids)
    return [
        Row(
            f"case open throughput ({n} cases, {GATE} in flight)",
            "cases/s",
            ours_rate,
            bare_rate,
            "bare workflow + 1 activity",
            True,
        )
    ]


async def event_append(pool: asyncpg.Pool, cases: int) -> list[Row]:
    """Scenario 5: events/s appending whole case histories, 1 and 16 writers, vs a plain insert."""
    import random

    rng = random.Random(42)
    histories = [generate_case(rng, i) for i in range(cases)]
    total = sum(len(h) for h in histories)
    store = EventStore(pool)
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_plain_events (stream_id text, version int, event_id uuid, "
            "event_type text, body text, recorded_at timestamptz)"
        )

    async def plain(events) -> None:  # noqa: ANN001
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO bench_plain_events SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::text[], "
                "$5::text[], $6::timestamptz[])",
                [e.stream_id for e in events],
                [e.version for e in events],
                [uuid.uuid4() for _ in events],
                [e.type for e in events],
                [e.model_dump_json() for e in events],
                [datetime.now(UTC)] * len(events),
            )

    async def ours(events) -> None:  # noqa: ANN001
        fresh = [e.model_copy(update={"event_id": uuid.uuid4(), "stream_id": e.stream_id + suffix}) for e in events]
        await store.append(fresh[0].stream_id, 0, fresh)

    async def run(write, writers: int) -> float:  # noqa: ANN001
        queue = list(histories)

        async def writer() -> None:
            while queue:
                await write(queue.pop())

        t = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        return total / (time.perf_counter() - t)

    rows = []
    for writers in (1, 16):
        suffix = f"-w{writers}-{uuid.uuid4().hex[:6]}"
        ours_rate = await run(ours, writers)
        plain_rate = await run(plain, writers)
        rows.append(
            Row(
                f"event append, {writers} writer{'s' if writers > 1 else ''} ({total} events)",
                "events/s",
                ours_rate,
                plain_rate,
                "plain asyncpg insert",
                True,
            )
        )
    return rows
