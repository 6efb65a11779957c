"""The workload every fault test runs: P1 cases under the seconds policy, so deadlines fall during the fault.

Under ``tests/policies/seconds.toml`` a P1 case must be acknowledged within
4 s per level: breaches at 4, 8, 12 and 16 s (levels 1-4), then every 3 s at
the top until someone acknowledges.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from events.store import EventStore
from samples.cases import command, open_command
from tests.eventually import assert_eventually
from workflows.client import case_handle, open_case, send_command
from workflows.core.commands import Acknowledge
from workflows.core.events import DeadlineBreached, RecordedEvent, stream_id_for
from workflows.core.vocabulary import DeadlineKind

TOP_LEVEL_DUE = timedelta(seconds=16)  # the level-4 acknowledge breach, 4 x 4 s after opening


async def open_cases(client: Client, task_queue: str, count: int, *, every: float = 0.0) -> list[str]:
    """Open ``count`` P1 cases, one every ``every`` seconds; return their ids once each opening is stored."""
    openings = [open_command() for _ in range(count)]
    opened = []
    for opening in openings:
        opened.append(asyncio.create_task(open_case(client, opening, task_queue=task_queue)))
        await asyncio.sleep(every)
    await asyncio.gather(*opened)
    return [o.case_id for o in openings]


def ack_breaches(events: list[RecordedEvent]) -> list[DeadlineBreached]:
    return [e.data for e in events if isinstance(e.data, DeadlineBreached) and e.data.kind == DeadlineKind.ACKNOWLEDGE]


async def wait_for_top_level_breach(store: EventStore, case_ids: list[str], *, timeout: float = 90) -> None:
    """Until every case has its level-4 acknowledge breach stored."""

    async def missing() -> list[str]:
        streams = await asyncio.gather(*(store.read_stream(stream_id_for(c)) for c in case_ids))
        return [
            c
            for c, events in zip(case_ids, streams, strict=True)
            if not any(b.due_at - events[0].occurred_at >= TOP_LEVEL_DUE for b in ack_breaches(events))
        ]

    await assert_eventually(missing, lambda m: not m, timeout=timeout, interval=0.5)


async def acknowledge_all(client: Client, case_ids: list[str], *, in_flight: int = 16) -> None:
    """Acknowledge every case, which stops its acknowledge clock (the workload's end state)."""
    limit = asyncio.Semaphore(in_flight)

    async def one(case_id: str) -> None:
        async with limit:
            await send_command(client, case_id, command(Acknowledge))

    await asyncio.gather(*(one(c) for c in case_ids))


async def terminate_all(client: Client, case_ids: list[str]) -> None:
    async def one(case_id: str) -> None:
        try:
            await case_handle(client, case_id).terminate("fault test finished")
        except RPCError:
            pass  # already finished, or the server is gone

    await asyncio.gather(*(one(c) for c in case_ids))


def assert_ack_breaches_at_true_instants(case_id: str, events: list[RecordedEvent]) -> None:
    """The acknowledge breaches fell at 4, 8, 12, 16 s after opening, then every 3 s until acknowledged.

    Every breach due at or before the acknowledgement is recorded, however late the worker got to it.
    """
    opened_at = events[0].occurred_at
    acked_at = next(e.occurred_at for e in events if e.type == "escalation.acknowledged")
    dues = [b.due_at - opened_at for b in ack_breaches(events)]
    expected = [timedelta(seconds=4 * level) for level in (1, 2, 3, 4)]
    while opened_at + expected[-1] + timedelta(seconds=3) <= acked_at:
        expected.append(expected[-1] + timedelta(seconds=3))
    assert dues == expected, f"{case_id}: acknowledge breaches due at {dues} after opening, expected {expected}"
    assert [b.level for b in ack_breaches(events)][:4] == [1, 2, 3, 4], f"{case_id}: levels out of order"
