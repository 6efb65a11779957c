"""API scenarios, each beside starting a bare Temporal workflow from the same machine in the same run.

* Command round trip over HTTP: ``POST /v1/escalations/{id}/notes`` (auth, idempotency
  record, update, event stored, reply), sequential. Baseline: ``start_workflow`` of a
  bare workflow, sequential.
* Sustained ``POST /v1/escalations``: cases opened per second (each reply only after the
  opening event is stored) with 16 requests in flight. Baseline: bare workflow starts per
  second with 16 in flight.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import uvicorn
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.app import create_app
from api.auth import create_token
from api.server import _Server
from api.services import Services
from bench.baseline_workflows import BareUpdateWorkflow
from bench.net import free_port
from bench.report import Row, percentile
from events.store import EventStore
from worker import build_worker
from workflows.core.policy import Policy
from workflows.core.vocabulary import Role
from workflows.escalation_workflow import workflow_id_for

CONCURRENCY = 16


def _open_body(n: int) -> dict:
    return {
        "customer": {"id": f"bench-{n % 50}", "name": "Bench Co", "tier": "enterprise"},
        "category": "technical",
        "lifecycle_stage": "ongoing_support",
        "severity": "sev3",
        "title": f"Bench case {n}",
        "description": "Opened by the API benchmark.",
        "source": "service",
    }


async def api_scenarios(client: Client, pool: asyncpg.Pool, dsn: str, policy: Policy, quick: bool) -> list[Row]:
    commands, opens = (20, 32) if quick else (300, 400)
    queue = f"bench-api-{uuid.uuid4().hex[:8]}"
    token = await create_token(pool, f"bench-{uuid.uuid4().hex[:8]}", Role.SERVICE)
    api_pool = await asyncpg.create_pool(dsn, min_size=2, max_size=20)
    services = Services(pool=api_pool, client=client, policy=policy, task_queue=queue)
    port = free_port()
    server = _Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    ours_ms: list[float] = []
    bare_ms: list[float] = []
    started_cases: list[str] = []
    bare_ids: list[str] = []
    try:
        worker = build_worker(client, EventStore(pool), policy, task_queue=queue)
        bare_worker = Worker(
            client,
            task_queue=queue + "-bare",
            workflows=[BareUpdateWorkflow],
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        async with worker, bare_worker, httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            opened = await http.post("/v1/escalations", json=_open_body(0))
            opened.raise_for_status()
            case_id = opened.json()["state"]["case_id"]
            started_cases.append(case_id)
            for i in range(commands):
                t = time.perf_counter()
                reply = await http.post(
                    f"/v1/escalations/{case_id}/notes",
                    json={"text": f"note {i}"},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                reply.raise_for_status()
                ours_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                workflow_id = f"bare-{uuid.uuid4().hex}"
                await client.start_workflow(BareUpdateWorkflow.run, id=workflow_id, task_queue=queue + "-bare")
                bare_ms.append((time.perf_counter() - t) * 1000)
                bare_ids.append(workflow_id)

            async def open_many(n: int) -> float:
                gate = asyncio.Semaphore(CONCURRENCY)

                async def one(i: int) -> None:
                    async with gate:
                        reply = await http.post("/v1/escalations", json=_open_body(i))
                        reply.raise_for_status()
                        started_cases.append(reply.json()["state"]["case_id"])

                t = time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(1, n + 1)))
                return n / (time.perf_counter() - t)

            async def start_many(n: int) -> float:
                gate = asyncio.Semaphore(CONCURRENCY)

                async def one() -> None:
                    async with gate:
                        workflow_id = f"bare-{uuid.uuid4().hex}"
                        await client.start_workflow(BareUpdateWorkflow.run, id=workflow_id, task_queue=queue + "-bare")
                        bare_ids.append(workflow_id)

                t = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(n)))
                return n / (time.perf_counter() - t)

            ours_rps = await open_many(opens)
            bare_rps = await start_many(opens)
            for case in started_cases:
                await client.get_workflow_handle(workflow_id_for(case)).terminate("benchmark done")
            for workflow_id in bare_ids:
                await client.get_workflow_handle(workflow_id).signal(BareUpdateWorkflow.finish)
    finally:
        server.should_exit = True
        await serving
        await api_pool.close()
    baseline = "bare workflow start"
    return [
        Row(
            "API command round trip p50 (POST notes)", "ms", percentile(ours_ms, 50), percentile(bare_ms, 50), baseline
        ),
        Row("API command round trip p99", "ms", percentile(ours_ms, 99), percentile(bare_ms, 99), baseline),
        Row(
            f"POST /v1/escalations sustained, {CONCURRENCY} in flight",
            "req/s",
            ours_rps,
            bare_rps,
            "bare workflow starts/s",
            higher_is_better=True,
        ),
    ]
