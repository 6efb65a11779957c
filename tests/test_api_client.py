"""The Python client: typed replies, problems as ApiError, and retries that reuse the idempotency key."""

from __future__ import annotations

import httpx
import pytest

from api.client import ApiError, EscalationsClient
from events.store import EventStore
from tests.api_support import ApiStack, open_body
from tests.eventually import assert_eventually
from workflows.core.events import stream_id_for
from workflows.core.vocabulary import Role

pytestmark = pytest.mark.timeout(120)


class LoseFirstReply(httpx.AsyncBaseTransport):
    """Delivers each POST to the server, but loses the reply of the first one (as a dropped connection would)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost = 0
        self.keys: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST":
            self.keys.append(request.headers["Idempotency-Key"])
            if self.lost == 0:
                self.lost += 1
                await response.aread()
                raise httpx.ReadError("connection dropped after the server answered", request=request)
        return response


async def test_a_lost_reply_is_retried_with_the_same_key_and_acts_once(served_stack: ApiStack) -> None:
    transport = LoseFirstReply()
    async with EscalationsClient(
        served_stack.base_url, served_stack.tokens[Role.AGENT], transport=transport, backoff=0.01
    ) as api:
        opened = await api.open(open_body(severity="sev4"))
        case_id = opened.state.case_id
        assert transport.keys[0] == transport.keys[1]  # the retry reused the key
        await api.command(case_id, "acknowledge")
        state = await api.get(case_id)
        assert state.status == "in_progress"
        with pytest.raises(ApiError) as refused:
            await api.command(case_id, "close")
        assert refused.value.status == 409 and refused.value.rule == "close.not_resolved"
        listed = [item async for item in api.cases(page_size=1, customer_id="acme")]
        assert len({item["case_id"] for item in listed}) == len(listed)
    events = await EventStore(served_stack.pool).read_stream(stream_id_for(case_id))
    assert [e.type for e in events] == ["escalation.opened", "escalation.acknowledged"]


async def test_listing_follows_the_cursor_through_every_page_in_deadline_order(served_stack: ApiStack) -> None:
    customer = f"pager-{served_stack.task_queue}"
    async with EscalationsClient(served_stack.base_url, served_stack.tokens[Role.SERVICE]) as api:
        for severity in ("sev1", "sev4", "sev2", "sev3", "sev1"):
            body = open_body(severity=severity)
            body["customer"] = {**body["customer"], "id": customer}
            await api.open(body)

        async def listed() -> list[dict]:
            return [item async for item in api.cases(page_size=2, customer_id=customer)]

        items = await assert_eventually(listed, lambda found: len(found) == 5)
    deadlines = [item["next_deadline_at"] for item in items]
    assert deadlines == sorted(deadlines) and len({item["case_id"] for item in items}) == 5
