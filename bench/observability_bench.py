"""Scenario ``observability``: what metrics and traces cost on an API command's round trip.

Three ways of serving the same command (``POST /v1/escalations/{id}/notes`` over HTTP: auth, idempotency
record, workflow update, event stored, reply), taking turns request by request in one process, so the
machine's noise falls on all three alike:

* baseline: metrics off, tracing off;
* metrics on, tracing off (what production runs without an OTLP endpoint);
* metrics on, tracing on: Temporal's OpenTelemetry plugin on the client and its worker, FastAPI's server
  span and the store's append span, through a batch span processor into an exporter that drops the spans
  (their building and batching are measured, not a collector's network).

The first two share one API server and one worker (metrics are switched per request); the third has its
own, built on a traced client.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import asyncpg
import httpx
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from temporalio.client import Client

from api.app import create_app
from api.auth import create_token
from api.server import _Server
from api.services import Services
from bench.api_bench import _open_body
from bench.net import free_port
from bench.report import Row, percentile
from events.store import EventStore
from observability import metrics, tracing
from worker import build_worker, connect_client
from workflows.core.policy import Policy
from workflows.core.vocabulary import Role
from workflows.escalation_workflow import workflow_id_for


class _Dropping(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def _serve(services: Services) -> tuple[_Server, asyncio.Task[None], str]:
    port = free_port()
    server = _Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, serving, f"http://127.0.0.1:{port}"


async def observability_cost(client: Client, pool: asyncpg.Pool, dsn: str, policy: Policy, commands: int) -> list[Row]:
    address = client.service_client.config.target_host
    token = await create_token(pool, f"bench-obs-{uuid.uuid4().hex[:8]}", Role.SERVICE)
    headers = {"Authorization": f"Bearer {token}"}
    plain_queue, traced_queue = f"bench-obs-{uuid.uuid4().hex[:8]}", f"bench-obs-traced-{uuid.uuid4().hex[:8]}"
    api_pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10)
    plain_services = Services(pool=api_pool, client=client, policy=policy, task_queue=plain_queue)
    plain_server, plain_serving, plain_url = await _serve(plain_services)
    # Tracing on from here; a traced client and its worker and API. Requests of the plain side switch it off.
    provider = tracing.install()
    provider.add_span_processor(BatchSpanProcessor(_Dropping()))
    traced_client = await connect_client(address, client.namespace)
    traced_services = Services(pool=api_pool, client=traced_client, policy=policy, task_queue=traced_queue)
    traced_server, traced_serving, traced_url = await _serve(traced_services)
    tracing.uninstall()
    times: dict[str, list[float]] = {"off": [], "metrics": [], "traced": []}
    cases: list[str] = []
    try:
        plain_worker = build_worker(client, EventStore(pool), policy, task_queue=plain_queue)
        traced_worker = build_worker(traced_client, EventStore(pool), policy, task_queue=traced_queue)
        async with plain_worker, traced_worker, httpx.AsyncClient(headers=headers, timeout=60) as http:
            case_of: dict[str, str] = {}

            async def fresh_cases() -> None:
                # A case per side every 100 commands: a case's history grows with each note, and a round
                # trip on a case with thousands of events is not the common one.
                for side, url in (("off", plain_url), ("metrics", plain_url), ("traced", traced_url)):
                    opened = await http.post(f"{url}/v1/escalations", json=_open_body(len(cases)))
                    opened.raise_for_status()
                    case_of[side] = opened.json()["state"]["case_id"]
                    cases.append(case_of[side])

            order = ["off", "metrics", "traced"]
            for i in range(commands + 5):
                if i % 100 == 0:
                    await fresh_cases()
                for side in order[i % 3 :] + order[: i % 3]:  # each side goes first in turn
                    metrics.set_enabled(side != "off")
                    if side == "traced":
                        tracing.install()
                    url = traced_url if side == "traced" else plain_url
                    t = time.perf_counter()
                    reply = await http.post(
                        f"{url}/v1/escalations/{case_of[side]}/notes",
                        json={"text": f"note {i}"},
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    )
                    elapsed = (time.perf_counter() - t) * 1000
                    tracing.uninstall()
                    reply.raise_for_status()
                    if i >= 5:  # the first rounds warm connections and caches
                        times[side].append(elapsed)
            for case in cases:
                await client.get_workflow_handle(workflow_id_for(case)).terminate("benchmark done")
    finally:
        metrics.set_enabled(True)
        tracing.uninstall()
        for server in (plain_server, traced_server):
            server.should_exit = True
        await asyncio.gather(plain_serving, traced_serving)
        await api_pool.close()
    base = "same command, metrics and tracing off"
    rows = []
    for side, label in (("metrics", "metrics on, tracing off"), ("traced", "metrics and tracing on")):
        for q in (50, 99):
            rows.append(
                Row(
                    f"observability: command round trip p{q}, {label} ({commands})",
                    "ms",
                    percentile(times[side], q),
                    percentile(times["off"], q),
                    base,
                )
            )
    return rows
