"""API scenarios, each beside starting a bare Temporal workflow from the same machine in the same run.

* Command round trip over HTTP: ``POST /v1/escalations/{id}/notes`` (auth, idempotency
  record, update, event stored, reply), sequential. Baseline: ``start_workflow`` of a
  bare workflow, sequential; and, doing the same Temporal work, a no-op update of a bare
  workflow. The same note sent two more ways, in the same loop, splits the round trip by
  stage: through ``Services.run_command`` (the update, then the case folded for the reply
  from the events after its last fold; no HTTP, token or idempotency record), and the
  workflow update alone (``send_command``).
* Sustained ``POST /v1/escalations``: cases opened per second (each reply only after the
  opening event is stored) with 16 requests in flight. Baselines: bare workflow starts per
  second with 16 in flight (a start does not wait for the workflow to run); and bare
  update-with-starts, which wait for the new workflow's first task to answer, as an opening does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import uvicorn
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
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
from workflows.client import send_command
from workflows.core.commands import AddNote
from workflows.core.events import Actor
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
    service_ms: list[float] = []  # Services.run_command: the update, then the re-read and fold for the reply
    update_ms: list[float] = []  # send_command: the workflow update alone
    bare_update_ms: list[float] = []
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
            # One case per way of sending the note, so each case grows alike.
            opened_cases = []
            for n in range(3):
                opened = await http.post("/v1/escalations", json=_open_body(n))
                opened.raise_for_status()
                opened_cases.append(opened.json()["state"]["case_id"])
            started_cases.extend(opened_cases)
            case_id, service_case_id, update_case_id = opened_cases
            actor = Actor(id="bench", role=Role.SERVICE)
            updated = f"bare-{uuid.uuid4().hex}"
            bare_ids.append(updated)
            updated_handle = await client.start_workflow(BareUpdateWorkflow.run, id=updated, task_queue=queue + "-bare")
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
                bare_ids.append(workflow_id)
                await client.start_workflow(BareUpdateWorkflow.run, id=workflow_id, task_queue=queue + "-bare")
                bare_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await services.run_command(
                    service_case_id, AddNote(actor=actor, idempotency_key=uuid.uuid4().hex, text=f"service note {i}")
                )
                service_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await send_command(
                    client,
                    update_case_id,
                    AddNote(actor=actor, idempotency_key=uuid.uuid4().hex, text=f"update note {i}"),
                )
                update_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await updated_handle.execute_update(BareUpdateWorkflow.noop, f"{i}")
                bare_update_ms.append((time.perf_counter() - t) * 1000)

            async def open_one(i: int) -> None:
                reply = await http.post("/v1/escalations", json=_open_body(i + 1))
                reply.raise_for_status()
                started_cases.append(reply.json()["state"]["case_id"])

            async def start_one(_: int) -> None:
                workflow_id = f"bare-{uuid.uuid4().hex}"
                bare_ids.append(workflow_id)
                await client.start_workflow(BareUpdateWorkflow.run, id=workflow_id, task_queue=queue + "-bare")

            async def update_with_start_one(_: int) -> None:
                workflow_id = f"bare-{uuid.uuid4().hex}"
                bare_ids.append(workflow_id)
                start = WithStartWorkflowOperation(
                    BareUpdateWorkflow.run,
                    id=workflow_id,
                    task_queue=queue + "-bare",
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
                await client.execute_update_with_start_workflow(
                    BareUpdateWorkflow.noop, "opened", start_workflow_operation=start
                )

            ours_rps = await _per_second(open_one, opens)
            bare_rps = await _per_second(start_one, opens)
            bare_answered_rps = await _per_second(update_with_start_one, opens)
    finally:
        # Whatever happened, end what the scenario started (terminating needs no worker).
        await _terminate(client, [workflow_id_for(case) for case in started_cases] + bare_ids)
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
            "API command round trip p50, against a bare update",
            "ms",
            percentile(ours_ms, 50),
            percentile(bare_update_ms, 50),
            "bare no-op update",
        ),
        Row(
            "API command round trip p50, its service alone (no HTTP, token, idempotency record)",
            "ms",
            percentile(service_ms, 50),
            percentile(bare_update_ms, 50),
            "bare no-op update",
        ),
        Row(
            "API command round trip p50, its workflow update alone",
            "ms",
            percentile(update_ms, 50),
            percentile(bare_update_ms, 50),
            "bare no-op update",
        ),
        Row(
            f"POST /v1/escalations sustained, {CONCURRENCY} in flight",
            "req/s",
            ours_rps,
            bare_rps,
            "bare workflow starts/s",
            higher_is_better=True,
        ),
        Row(
            f"POST /v1/escalations sustained, {CONCURRENCY} in flight, against answered starts",
            "req/s",
            ours_rps,
            bare_answered_rps,
            "bare update-with-starts/s",
            higher_is_better=True,
        ),
    ]


async def _terminate(client: Client, workflow_ids: list[str]) -> None:
    """Terminate each of ``workflow_ids`` that still runs (64 at a time; one already gone is skipped)."""
    gate = asyncio.Semaphore(64)

    async def end(workflow_id: str) -> None:
        async with gate:
            with contextlib.suppress(Exception):  # already finished, or never started
                await client.get_workflow_handle(workflow_id).terminate("benchmark done")

    await asyncio.gather(*(end(w) for w in workflow_ids))


async def _per_second(call: Callable[[int], Awaitable[None]], n: int) -> float:
    """``call(0)`` .. ``call(n - 1)`` with ``CONCURRENCY`` in flight at once; how many completed per second."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await call(i)

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - t)
