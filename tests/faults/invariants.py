"""The invariants every fault test checks afterwards, whatever the fault was.

``check_invariants`` raises ``AssertionError`` naming the case and the rule
broken, and returns the names of the checks that held (the Reliability table
lists them).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.client import Client

from events.store import EventStore
from projections import PROJECTIONS
from tests.eventually import assert_eventually
from tests.faults.report import INVARIANTS
from tests.projection_support import differences_from_rebuild
from workflows.client import case_state
from workflows.core.case_view import CaseView, case_view
from workflows.core.decide import next_wake
from workflows.core.events import DeadlineBreached, RecordedEvent, stream_id_for
from workflows.core.evolve import evolve, fold
from workflows.core.state import EscalationState

STREAMS, UNIQUE_IDS, DEADLINES, FOLD, READ_MODELS = INVARIANTS


def check_stream(case_id: str, events: list[RecordedEvent]) -> None:
    assert events, f"{case_id}: no events stored"
    versions = [e.version for e in events]
    assert versions == list(range(1, len(events) + 1)), f"{case_id}: versions {versions} are not 1..n"
    by_command: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event.command_key is not None:
            by_command[event.command_key].append(event.version)
    for key, command_versions in by_command.items():
        # One command is one append: its events are one consecutive run of versions.
        assert command_versions == list(range(command_versions[0], command_versions[0] + len(command_versions))), (
            f"{case_id}: command {key} stored more than once, at versions {command_versions}"
        )


def check_deadlines(case_id: str, events: list[RecordedEvent], checked_at: datetime, grace: timedelta) -> None:
    """Each breach once, never early, the chain of re-armed clocks unbroken, nothing due left unenforced when a
    command was decided, and nothing overdue now."""
    seen: set[tuple[str, datetime]] = set()
    last_breach: dict[str, DeadlineBreached] = {}
    before: EscalationState | None = None  # the case as it stood before ``event``
    for index, event in enumerate(events):
        data = event.data
        starts_a_command = event.command_key is not None and (
            index == 0 or events[index - 1].command_key != event.command_key
        )
        if starts_a_command and before is not None:
            # A command is decided only once nothing is due at its instant (its events carry that instant):
            # what fell due before it is enforced first, whatever the command then stops or restarts.
            due = next_wake(before)
            assert due is None or due > event.occurred_at, (
                f"{case_id}: command {event.command_key} was decided at {event.occurred_at} while something "
                f"due at {due} was not yet enforced"
            )
        before = evolve(before, event)
        if isinstance(data, DeadlineBreached):
            key = (data.kind, data.due_at)
            assert key not in seen, f"{case_id}: {data.kind} deadline due {data.due_at} enforced twice"
            seen.add(key)
            assert data.detected_at >= data.due_at, f"{case_id}: {data.kind} breach detected before it was due"
            previous = last_breach.get(data.kind)
            if previous is not None and previous.next_due_at is not None:
                assert data.due_at == previous.next_due_at, (
                    f"{case_id}: the {data.kind} clock was re-armed for {previous.next_due_at} "
                    f"but the next breach is for {data.due_at} (a deadline was skipped or moved)"
                )
            last_breach[data.kind] = data
        elif event.command_key is not None:
            last_breach.clear()  # a command may stop or restart clocks; the system's own events do not
    state = fold(events)
    wake = next_wake(state) if state is not None else None
    assert wake is None or wake > checked_at - grace, (
        f"{case_id}: a deadline due at {wake} was not enforced by {checked_at} (grace {grace})"
    )


async def streams(pool: asyncpg.Pool, case_ids: list[str]) -> list[list[RecordedEvent]]:
    store = EventStore(pool)
    return list(await asyncio.gather(*(store.read_stream(stream_id_for(c)) for c in case_ids)))


# Queries in flight at once: the Temporal server refuses thousands at a time ("namespace concurrent poller
# limit exceeded", which ended a two-hour soak's check of its 7,200 cases), and each may replay its case.
QUERIES_AT_ONCE = 32


async def case_states(client: Client, case_ids: list[str]) -> list[CaseView]:
    """Each case's workflow state (its ``state`` query), ``QUERIES_AT_ONCE`` in flight at a time."""
    limit = asyncio.Semaphore(QUERIES_AT_ONCE)

    async def one(case_id: str) -> CaseView:
        async with limit:
            return await case_state(client, case_id)

    return list(await asyncio.gather(*(one(c) for c in case_ids)))


def breach_delays(all_events: list[list[RecordedEvent]]) -> list[float]:
    """Every breach's lateness in seconds, stored minus due."""
    return [
        (e.recorded_at - e.data.due_at).total_seconds()
        for events in all_events
        for e in events
        if isinstance(e.data, DeadlineBreached)
    ]


def breach_lateness(all_events: list[list[RecordedEvent]]) -> str:
    """Every breach's lateness, stored minus due: p50, p99 and max over all of them (the Reliability table's
    measure of a fault's cost to the promise)."""
    delays = sorted(breach_delays(all_events))
    if not delays:
        return "no breach stored"

    def rank(q: float) -> float:
        return delays[min(len(delays) - 1, round(q / 100 * (len(delays) - 1)))]

    return f"p50 {rank(50):.1f} s, p99 {rank(99):.1f} s, max {delays[-1]:.1f} s over {len(delays)} breaches"


async def check_invariants(
    client: Client,
    pool: asyncpg.Pool,
    case_ids: list[str],
    *,
    grace: timedelta = timedelta(seconds=5),
    read_models: bool = True,
) -> list[str]:
    store = EventStore(pool)
    checked_at = datetime.now(UTC)
    stored = await streams(pool, case_ids)
    for case_id, events in zip(case_ids, stored, strict=True):
        check_stream(case_id, events)
        broken = await store.verify_stream(stream_id_for(case_id))
        assert broken is None, f"{case_id}: hash chain broken: {broken}"
    async with pool.acquire() as conn:
        reused = await conn.fetch("SELECT event_id, count(*) AS n FROM events GROUP BY event_id HAVING count(*) > 1")
    assert not reused, f"event ids stored twice: {[dict(r) for r in reused]}"
    for case_id, events in zip(case_ids, stored, strict=True):
        check_deadlines(case_id, events, checked_at, grace)
    states = await case_states(client, case_ids)
    for case_id, events, state in zip(case_ids, stored, states, strict=True):
        assert state == case_view(fold(events)), f"{case_id}: the workflow's state differs from the fold of its events"
    checks = [STREAMS, UNIQUE_IDS, DEADLINES, FOLD]
    if read_models:
        await projector_caught_up(pool)
        differences = await differences_from_rebuild(pool)
        assert differences == [], f"read models differ from a rebuild: {[str(d) for d in differences]}"
        checks.append(READ_MODELS)
    return checks


async def projector_caught_up(pool: asyncpg.Pool, timeout: float = 30) -> None:
    async def positions() -> tuple[int, list[int]]:
        async with pool.acquire() as conn:
            head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
            rows = await conn.fetch("SELECT position FROM projection_checkpoints")
        return head, [r["position"] for r in rows]

    await assert_eventually(
        positions,
        lambda p: len(p[1]) == len(PROJECTIONS) and all(position == p[0] for position in p[1]),
        timeout=timeout,
    )
