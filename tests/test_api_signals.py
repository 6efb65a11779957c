"""Early-warning signals: a burst of 1,000 for one account opens exactly one proactive case."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter

import httpx
import pytest

from events.store import EventStore
from tests.api_support import ApiStack
from tests.eventually import assert_progressing
from workflows.core.events import stream_id_for
from workflows.core.vocabulary import Role

pytestmark = pytest.mark.timeout(180)
N_SIGNALS = int(os.environ.get("N_SIGNALS", 1000))


async def test_a_burst_of_a_thousand_signals_opens_exactly_one_proactive_case(served_stack: ApiStack) -> None:
    customer = f"acct-{uuid.uuid4().hex[:8]}"
    url = f"{served_stack.base_url}/v1/accounts/{customer}/signals"
    async with httpx.AsyncClient(timeout=60) as http:
        below = await http.post(
            url, json={"kind": "usage_drop", "value": 0.05}, headers=served_stack.headers(Role.SERVICE)
        )
    assert below.status_code == 200 and below.json()["outcome"] == "below_threshold"

    # 50 senders, each with a connection of its own, sending back to back: 50 requests in flight
    # at once (one shared httpx pool degrades quadratically with this many requests queued).
    async def sender(first: int) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as own:
            return [
                await own.post(
                    url,
                    json={"kind": "usage_drop", "value": 0.5, "detail": f"signal {i}", "customer_name": "Acme"},
                    headers=served_stack.headers(Role.SERVICE),
                )
                for i in range(first, N_SIGNALS, 50)
            ]

    replies = [r for batch in await asyncio.gather(*(sender(k) for k in range(50))) for r in batch]
    assert {r.status_code for r in replies} <= {200, 201}, {
        r.status_code: r.text for r in replies if r.status_code >= 300
    }
    outcomes = Counter(r.json()["outcome"] for r in replies)
    assert outcomes == {"opened": 1, "attached": N_SIGNALS - 1}
    [case_id] = {r.json()["case_id"] for r in replies}
    store = EventStore(served_stack.pool)
    stream = stream_id_for(case_id)

    async def stored() -> int:
        async with served_stack.pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream)

    # Signals are fire-and-forget: the case appends its backlog one command at a time, as fast as the machine allows.
    await assert_progressing(stored, lambda n: n >= N_SIGNALS)
    events = await store.read_stream(stream)
    assert events[0].data.source == "early_warning" and events[0].data.signal.kind == "usage_drop"
    assert Counter(e.type for e in events) == {"escalation.opened": 1, "escalation.signal_attached": N_SIGNALS - 1} | (
        {k: v for k, v in Counter(e.type for e in events).items() if k.startswith("escalation.deadline")}
    )
    async with served_stack.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM proactive_cases WHERE customer_id = $1", customer) == 1
        assert (
            await conn.fetchval("SELECT count(*) FROM account_signals WHERE customer_id = $1", customer)
            == N_SIGNALS + 1
        )
