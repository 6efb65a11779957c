"""The soak: a mixed workload under every fault at once, for as long as asked.

Cases are opened one every ``open_every`` seconds for ``seconds`` seconds (P1 under the seconds policy, so
deadlines fall due all the time). A third of them are left alone until their level-4 breach is stored, then
acknowledged at once; the others take a random walk of the commands their state offers (``available_commands``),
from an agent or a manager, each sent as an update or, where the command allows it, as a signal, and are
acknowledged at the end of their walk if they still can be (else they would breach every 3 s for the rest of
the run). Meanwhile the two workers are SIGKILLed in turn (the other one always up),
the projector is SIGKILLed, and PostgreSQL is cut off behind a TCP proxy, at instants spread evenly through
the run. Afterwards the fault suite's five invariants are checked over every case, and the left-alone cases'
breaches must fall at their true instants.

``tests/faults/test_soak.py`` runs it: for 30 s in CI, for hours under ``python -m bench.soak``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from events.store import EventStore
from samples.cases import AGENT, MANAGER, command, open_command
from tests.eventually import assert_eventually
from tests.faults.invariants import breach_delays, breach_lateness, case_states, check_invariants, streams
from tests.faults.processes import ManagedProcess, app_env, projector_process, worker_process
from tests.faults.proxy import TcpProxy
from tests.faults.workload import (
    TOP_LEVEL_DUE,
    assert_ack_breaches_at_true_instants,
    terminate_all,
    wait_for_top_level_breach,
)
from workflows.client import CommandRefused, case_handle, open_case, send_command
from workflows.core.commands import COMMAND_CLASSES, Acknowledge
from workflows.core.decide import available_commands
from workflows.core.events import Compensation, DeadlineBreached, stream_id_for
from workflows.core.evolve import fold
from workflows.core.vocabulary import (
    Category,
    CompensationKind,
    NoteVisibility,
    PauseReason,
    Priority,
    RootCause,
    Severity,
    WithdrawReason,
)
from workflows.escalation_workflow import SIGNALS

# Not in the walk: a policy change needs a second published policy, which the soak does not publish.
LEFT_OUT = {"change_policy"}


@dataclass(frozen=True)
class SoakPlan:
    seconds: float  # how long cases are opened and faults injected
    worker_kills: int
    projector_kills: int
    database_cuts: int
    cut_seconds: float = 4.0
    open_every: float = 1.0
    left_alone: float = 1 / 3  # the share of cases no one touches until their top-level breach
    seed: int = 6


@dataclass
class SoakResult:
    plan: SoakPlan
    cases: int = 0
    events: int = 0
    commands_sent: int = 0
    commands_refused: int = 0
    commands_by_name: dict[str, int] = field(default_factory=dict)
    worker_kills: int = 0
    projector_kills: int = 0
    database_cuts: int = 0
    breaches: int = 0
    lateness: str = ""
    lateness_seconds: list[float] = field(default_factory=list)  # every breach's stored - due
    late: str = ""  # the breaches more than 5 s late, by the fault before them
    checked: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


def random_command(name: str, rng: random.Random) -> Any:
    """A well-formed command ``name`` with random fields, from an agent or a manager as the command allows."""
    text = f"soak {rng.randrange(1 << 20):x}"
    fields: dict[str, Any] = {}
    match name:
        case "assign":
            fields = {"owner": rng.choice(["alice", "bob", "carol"])}
        case "add_note":
            fields = {"visibility": rng.choice(list(NoteVisibility)), "text": text}
        case "attach_signal":
            fields = {"signal": {"kind": "usage_drop", "value": round(rng.uniform(0, 1), 2), "detail": text}}
        case "request_escalation":
            fields = {"reason": text}
        case "decline_escalation" | "reopen":
            fields = {"reason": text}
        case "escalate" | "de_escalate":
            fields = {"reason": text}
        case "pause":
            fields = {"reason": rng.choice(list(PauseReason))}
        case "change_priority":
            fields = {"reason": text, "to_priority": rng.choice(list(Priority))}
        case "propose_resolution":
            compensation = (
                Compensation(kind=CompensationKind.CREDIT, amount=Decimal(rng.choice([100, 4000])))
                if rng.random() < 0.3
                else None
            )
            fields = {
                "summary": text,
                "root_cause": rng.choice(list(RootCause)),
                "root_cause_text": text,
                "compensation": compensation,
            }
        case "decide_compensation":
            fields = {"approved": rng.random() < 0.7}
        case "customer_response":
            fields = {"accepted": rng.random() < 0.7}
        case "follow_up":
            fields = {"satisfaction": rng.randint(1, 5)}
        case "withdraw":
            fields = {"reason": rng.choice(list(WithdrawReason))}
        case "correct_facts":
            fields = {"reason": text, "category": rng.choice(list(Category)), "severity": rng.choice(list(Severity))}
    return COMMAND_CLASSES[name], fields


class Soak:
    def __init__(self, client: Client, pool: asyncpg.Pool, url: str, task_queue: str, log_dir: Path, plan: SoakPlan):
        self.client, self.pool, self.task_queue, self.plan = client, pool, task_queue, plan
        self.store = EventStore(pool)
        self.rng = random.Random(plan.seed)
        self.proxy = TcpProxy.for_database(url)
        self.url = url
        self.log_dir = log_dir
        self.result = SoakResult(plan)
        self.left_alone: list[str] = []
        self.walked: list[str] = []
        self.errors: list[str] = []
        self.faults: list[tuple[datetime, str]] = []  # when each fault began

    async def run(self) -> SoakResult:
        started = time.monotonic()
        await self.proxy.start()
        env = app_env(self.proxy.url_through(self.url), self.client.service_client.config.target_host, self.task_queue)
        # Both workers log at INFO so the soak can tell when each is up ("worker started").
        info = {**env, "ESCALATIONS_LOG_LEVEL": "INFO"}
        self.workers = [worker_process(name, info, self.log_dir) for name in ("a", "b")]
        self.projector = projector_process("projector", env, self.log_dir)
        processes: list[ManagedProcess] = [*self.workers, self.projector]
        for process in processes:
            process.start()
        try:
            tasks, _ = await asyncio.gather(self._open_and_walk(), self._inject_faults())
            await asyncio.gather(*tasks)
            assert not self.errors, f"{len(self.errors)} commands failed other than by refusal: {self.errors[:5]}"
            case_ids = self.left_alone + self.walked
            await self._acknowledge(case_ids)
            await self._settled(case_ids)
            self.result.checked = await check_invariants(self.client, self.pool, case_ids)
            stored = await streams(self.pool, case_ids)
            by_case = dict(zip(case_ids, stored, strict=True))
            for case_id in self.left_alone:
                assert_ack_breaches_at_true_instants(case_id, by_case[case_id])
            self.result.checked.append("left-alone cases: breaches at 4/8/12/16 s after opening, then every 3 s")
            for process in processes:
                assert process.alive(), f"{process.name} exited on its own; log:\n{process.log_tail()}"
            self.result.cases = len(case_ids)
            self.result.events = sum(len(events) for events in stored)
            self.result.lateness_seconds = breach_delays(stored)
            self.result.breaches = len(self.result.lateness_seconds)
            self.result.lateness = breach_lateness(stored)
            self.result.late = self.late_breaches(stored)
            self.result.wall_seconds = time.monotonic() - started
            return self.result
        finally:
            await terminate_all(self.client, self.left_alone + self.walked)
            for process in processes:
                process.stop()
            await self.proxy.close()

    # ------------------------------------------------------------------ the workload

    async def _open_and_walk(self) -> list[asyncio.Task]:
        tasks = []
        deadline = time.monotonic() + self.plan.seconds
        while time.monotonic() < deadline:
            opening = open_command()
            await open_case(self.client, opening, task_queue=self.task_queue)
            if self.rng.random() < self.plan.left_alone:
                self.left_alone.append(opening.case_id)
                tasks.append(asyncio.create_task(self._leave_alone(opening.case_id)))
            else:
                self.walked.append(opening.case_id)
                tasks.append(asyncio.create_task(self._walk(opening.case_id, random.Random(self.rng.random()))))
            await asyncio.sleep(self.plan.open_every)
        return tasks

    async def _leave_alone(self, case_id: str) -> None:
        """Untouched until its level-4 breach is stored, then acknowledged (else it breaches every 3 s)."""
        await wait_for_top_level_breach(self.store, [case_id], timeout=TOP_LEVEL_DUE.total_seconds() + 120)
        await self._send(case_id, "acknowledge", command(Acknowledge))

    async def _walk(self, case_id: str, rng: random.Random) -> None:
        """Up to 10 commands the case's state offers, 0.2-2 s apart, then acknowledge if it still can be."""
        for _ in range(rng.randint(2, 10)):
            await asyncio.sleep(rng.uniform(0.2, 2.0))
            state = fold(await self.store.read_stream(stream_id_for(case_id)))
            if state is None:
                continue  # the opening is not stored yet (the database is cut off)
            actor = rng.choice([AGENT, MANAGER])
            offered = [n for n in available_commands(state, actor.role, datetime.now(UTC)) if n not in LEFT_OUT]
            if not offered:
                break
            name = rng.choice(offered)
            cls, fields = random_command(name, rng)
            await self._send(
                case_id, name, command(cls, actor=actor, **fields), as_signal=name in SIGNALS and rng.random() < 0.5
            )
        # Done with it: acknowledged if it still can be, so its clock stops repeating at the top level every
        # 3 s (the load of the run stays that of its openings, however long it lasts).
        await self._acknowledge_if_offered(case_id)

    async def _send(self, case_id: str, name: str, cmd: Any, *, as_signal: bool = False) -> None:
        self.result.commands_sent += 1
        self.result.commands_by_name[name] = self.result.commands_by_name.get(name, 0) + 1
        try:
            if as_signal:
                await case_handle(self.client, case_id).signal(name, cmd)
            else:
                await send_command(self.client, case_id, cmd)
        except CommandRefused:
            self.result.commands_refused += 1  # the state moved on (a breach, another command): written nothing
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                self.errors.append(f"{case_id} {name}: RPCError {exc.status}: {exc}")
            else:
                self.result.commands_refused += 1  # the case has finished (withdrawn): the API's case.finished
        except Exception as exc:  # noqa: BLE001 - anything else is a finding, reported at the end
            self.errors.append(f"{case_id} {name}: {type(exc).__name__}: {exc}")

    async def _acknowledge(self, case_ids: list[str]) -> None:
        """Every case whose acknowledge clock still runs is acknowledged (the workload's end state)."""
        limit = asyncio.Semaphore(16)

        async def one(case_id: str) -> None:
            async with limit:
                await self._acknowledge_if_offered(case_id)

        await asyncio.gather(*(one(c) for c in case_ids))
        assert not self.errors, f"acknowledging failed: {self.errors[:5]}"

    async def _acknowledge_if_offered(self, case_id: str) -> None:
        state = fold(await self.store.read_stream(stream_id_for(case_id)))
        if state is not None and "acknowledge" in available_commands(state, AGENT.role, datetime.now(UTC)):
            await self._send(case_id, "acknowledge", command(Acknowledge))

    async def _settled(self, case_ids: list[str]) -> None:
        """Until every case's workflow holds what its stream holds: a command sent as a signal is not awaited,
        and one still in flight would make the fold and the workflow's state differ for a moment. Each round
        asks again only the cases still behind; the patience grows with the cases (a query may replay one)."""
        pending = list(case_ids)

        async def behind() -> list[str]:
            nonlocal pending
            stored = await streams(self.pool, pending)
            states = await case_states(self.client, pending)
            pending = [
                c for c, events, view in zip(pending, stored, states, strict=True) if view.version != len(events)
            ]
            return pending

        timeout = max(120.0, 0.1 * len(case_ids))
        await assert_eventually(behind, lambda late: not late, timeout=timeout, interval=1.0)

    # ------------------------------------------------------------------ the faults

    async def _inject_faults(self) -> None:
        """Every fault at an instant spread evenly through the run (jittered), in time order."""
        plan, rng = self.plan, self.rng
        timeline: list[tuple[float, str]] = []
        for kind, count in (
            ("worker", plan.worker_kills),
            ("projector", plan.projector_kills),
            ("cut", plan.database_cuts),
        ):
            step = plan.seconds / max(1, count)
            timeline += [((i + rng.uniform(0.1, 0.9)) * step, kind) for i in range(count)]
        t0 = time.monotonic()
        for at, kind in sorted(timeline):
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            if kind == "worker":
                await self._kill_a_worker()
            elif kind == "projector":
                self.projector.kill()
                self._faulted("projector kill")
                self.projector.start()
                self.result.projector_kills += 1
            else:
                await self.proxy.cut()
                self._faulted("database cut")
                await asyncio.sleep(plan.cut_seconds)
                await self.proxy.restore()
                self.result.database_cuts += 1

    async def _kill_a_worker(self) -> None:
        victim = self.workers[self.result.worker_kills % 2]
        other = self.workers[(self.result.worker_kills + 1) % 2]
        # The other one is up, and the victim has been polling (killed with work in flight, not at start-up).
        await other.wait_for_log("worker started", len(other.pids), timeout=60)
        await victim.wait_for_log("worker started", len(victim.pids), timeout=60)
        victim.kill()
        self._faulted("worker kill")
        victim.start()
        self.result.worker_kills += 1

    def _faulted(self, kind: str) -> None:
        self.faults.append((datetime.now(UTC), kind))

    def late_breaches(self, stored: list[list[Any]], over: float = 5.0) -> str:
        """How many breaches were stored more than ``over`` seconds late, by the last fault from 20 s before
        each was due until it was stored (else "no fault"): which fault a tail comes from."""
        by_fault: dict[str, int] = {}
        for events in stored:
            for e in events:
                if not isinstance(e.data, DeadlineBreached):
                    continue
                if (e.recorded_at - e.data.due_at).total_seconds() <= over:
                    continue
                before = [
                    kind for at, kind in self.faults if e.data.due_at - timedelta(seconds=20) <= at <= e.recorded_at
                ]
                cause = before[-1] if before else "no fault"
                by_fault[cause] = by_fault.get(cause, 0) + 1
        if not by_fault:
            return f"none over {over:g} s"
        return f"{sum(by_fault.values())} over {over:g} s; the last fault before each: " + ", ".join(
            f"{kind} {n}" for kind, n in sorted(by_fault.items(), key=lambda kv: -kv[1])
        )


def row(result: SoakResult) -> dict[str, Any]:
    """The soak's result row (``bench/soak.json`` and the README)."""
    plan = result.plan
    return {
        "ran_on": datetime.now(UTC).strftime("%Y-%m-%d"),
        "wall time": f"{result.wall_seconds / 60:.0f} min ({plan.seconds / 60:.0f} min of faults and openings)",
        "faults": (
            f"{result.worker_kills} worker SIGKILLs (two workers in turn), {result.projector_kills} projector "
            f"SIGKILLs, {result.database_cuts} PostgreSQL cuts of {plan.cut_seconds:g} s"
        ),
        "workload": (
            f"{result.cases} P1 cases, {result.events} events; {result.commands_sent} commands "
            f"({len(result.commands_by_name)} kinds, {result.commands_refused} refused by a case rule)"
        ),
        "deadlines enforced": result.breaches,
        "breach stored - due": result.lateness,
        "late breaches": result.late,
        "checked": result.checked,
        "top-level breach due": f"{TOP_LEVEL_DUE.total_seconds():g} s after opening",
    }
