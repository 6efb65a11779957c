"""Operability against real servers: the worker's Prometheus endpoints around a deadline that breaches on
the dev server, the projector's gauges and delivery counters moving, one trace per API command, and the
access log's line per request."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import re
import types
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import create_token
from api.routes import health
from api.services import Services
from events.store import EventStore
from observability import metrics, tracing
from projections.channels import ChannelsConfig, WebhookConfig
from projections.gauges import sample
from projections.service import run_projector
from samples.cases import Case, open_command
from tests.api_support import open_body
from tests.eventually import assert_eventually
from tests.net import free_port
from tests.notification_receivers import HttpSink
from worker import Settings, connect_client, run_worker
from workflows.client import open_case
from workflows.core.events import Customer, DeadlineBreached
from workflows.core.vocabulary import CustomerTier, Role, Severity
from workflows.policy_files import load_policy

ROOT = Path(__file__).resolve().parent.parent
SECONDS_POLICY = ROOT / "tests" / "policies" / "seconds.toml"


def samples_of(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(address: str) -> dict:
    async with httpx.AsyncClient(timeout=5) as http:
        reply = await http.get(f"http://{address}/metrics")
    reply.raise_for_status()
    return samples_of(reply.text)


async def scrape_when_up(address: str) -> dict | None:
    """A scrape, or None while the endpoint is not listening yet (the worker is starting)."""
    try:
        return await scrape(address)
    except httpx.ConnectError:
        return None


def target(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def test_the_worker_counts_a_breach_in_its_lateness_histogram_by_kind_and_level(
    dev_env: WorkflowEnvironment, database_url: str, pool: asyncpg.Pool
) -> None:
    metrics_address, sdk_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    queue = f"ops-{uuid.uuid4().hex[:8]}"
    settings = dataclasses.replace(
        Settings.from_env({}),
        database_url=database_url,
        temporal_address=target(dev_env),
        task_queue=queue,
        policy_path=SECONDS_POLICY,  # a P1 must be acknowledged within 4 s
        digest_every=None,
        metrics_address=metrics_address,
        temporal_metrics_address=sdk_address,
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    command = open_command(severity=Severity.SEV1)
    try:
        before = await assert_eventually(lambda: scrape_when_up(metrics_address), lambda found: found is not None)
        stored_before = value(
            before, "escalations_deadline_lateness_seconds_count", kind="acknowledge", level="1", stage="stored"
        )
        detected_before = value(
            before, "escalations_deadline_lateness_seconds_count", kind="acknowledge", level="1", stage="detected"
        )
        breaches_before = value(before, "escalations_breaches_total", kind="acknowledge", level="1")
        escalations_before = value(before, "escalations_escalations_total", level="2", cause="breach")
        handle = await open_case(dev_env.client, command, task_queue=queue)

        async def breaches() -> list[DeadlineBreached]:
            events = await EventStore(pool).read_stream(f"escalation-{command.case_id}")
            return [e.data for e in events if isinstance(e.data, DeadlineBreached)]

        stored = await assert_eventually(breaches, lambda found: len(found) >= 1, timeout=60)
        assert (stored[0].kind.value, stored[0].level) == ("acknowledge", 1)
        after = await scrape(metrics_address)
        labels = {"kind": "acknowledge", "level": "1"}
        assert value(after, "escalations_breaches_total", **labels) == breaches_before + 1
        assert (
            value(after, "escalations_deadline_lateness_seconds_count", **labels, stage="stored") == stored_before + 1
        )
        assert (
            value(after, "escalations_deadline_lateness_seconds_count", **labels, stage="detected")
            == detected_before + 1
        )
        assert value(after, "escalations_escalations_total", level="2", cause="breach") == escalations_before + 1
        # Nothing counted under another kind or level for this breach.
        for (name, label_set), count in after.items():
            if name == "escalations_breaches_total" and dict(label_set) != labels:
                assert count == value(before, name, **dict(label_set)), dict(label_set)
        # The +Inf bucket holds it; a finite bucket at or above its true lateness holds it too.
        history = await EventStore(pool).read_stream(f"escalation-{command.case_id}")
        breach = next(e for e in history if isinstance(e.data, DeadlineBreached))
        late = (breach.recorded_at - breach.data.due_at).total_seconds()
        bound = min(b for b in metrics.LATENESS_BUCKETS if b >= late)
        bucket = value(after, "escalations_deadline_lateness_seconds_bucket", **labels, stage="stored", le=str(bound))
        assert (
            bucket
            >= value(before, "escalations_deadline_lateness_seconds_bucket", **labels, stage="stored", le=str(bound))
            + 1
        )
        # Full garbage collections are timed once a worker runs in the process (observability/gc_pauses.py).
        collections_before = value(after, "escalations_gc_pause_seconds_count")
        gc.collect()
        assert value(await scrape(metrics_address), "escalations_gc_pause_seconds_count") >= collections_before + 1
        # Temporal's own metrics, from the worker's SDK runtime: workflow tasks of this queue, its pollers.
        sdk = await scrape(sdk_address)
        names = {name for name, _ in sdk}
        for name in metrics.TEMPORAL_SDK_SAMPLES:
            assert name in names, name
        assert any(
            name == "temporal_workflow_task_schedule_to_start_latency_seconds_count" and ("task_queue", queue) in ls
            for name, ls in sdk
        )
        await handle.terminate("test done")
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=30)


async def test_the_projector_moves_its_lag_gauge_and_delivery_counters(own_pool: asyncpg.Pool) -> None:
    policy = load_policy(SECONDS_POLICY)
    store = EventStore(own_pool)
    case_id = f"ops-{uuid.uuid4().hex[:8]}"
    case = Case(
        policy=policy,
        case_id=case_id,
        severity=Severity.SEV1,
        customer=Customer(id="ops-co", name="Ops Co", tier=CustomerTier.STRATEGIC),
    )
    from datetime import timedelta

    case.advance(timedelta(seconds=10))  # opened, warned, breached, escalated
    recorded = await store.append(case.events[0].stream_id, 0, case.events)
    async with own_pool.acquire() as conn:
        await sample(conn, ["case_list", "notifications"])
    exposed = samples_of(metrics.exposition()[0].decode())
    assert value(exposed, "escalations_projection_lag_events", projection="case_list") == len(recorded)
    assert value(exposed, "escalations_projection_lag_seconds", projection="case_list") > 0
    delivered_before = value(exposed, "escalations_deliveries_total", channel="webhook", outcome="delivered")
    hooks = HttpSink()  # the levels' webhook targets, answering 200
    channels = ChannelsConfig(
        webhooks={name: WebhookConfig(url=f"{hooks.url}/{name}") for name in ("support", "esc-managers", "directors")}
    )

    address = f"127.0.0.1:{free_port()}"
    metrics.serve_once(address)
    stop = asyncio.Event()
    projector = asyncio.create_task(run_projector(own_pool, channels, stop, gauges_every=0.1))
    try:

        async def ours() -> dict:  # only our samples, so a failure shows what matters
            wanted = (
                "escalations_projection_lag",
                "escalations_deliveries",
                "escalations_open",
                "escalations_delivery",
            )
            return {k: v for k, v in (await scrape(address)).items() if k[0].startswith(wanted)}

        caught_up = await assert_eventually(
            ours,
            lambda found: (
                value(found, "escalations_projection_lag_events", projection="case_list") == 0
                and value(found, "escalations_projection_lag_events", projection="notifications") == 0
                and value(found, "escalations_deliveries_total", channel="webhook", outcome="delivered")
                > delivered_before
            ),
            timeout=30,
        )
        assert value(caught_up, "escalations_projection_lag_seconds", projection="case_list") == 0
        async with own_pool.acquire() as conn:
            listed = await conn.fetchrow("SELECT priority, status, level FROM case_list WHERE case_id = $1", case_id)
        open_cases = {labels: n for (name, labels), n in caught_up.items() if name == "escalations_open_cases"}
        assert open_cases == {
            frozenset({("priority", "P1"), ("status", listed["status"]), ("level", str(listed["level"]))}): 1
        }
        assert value(caught_up, "escalations_delivery_latency_seconds_count", channel="webhook") >= 1
        assert len(hooks.by_id) >= 1
    finally:
        stop.set()
        await asyncio.wait_for(projector, timeout=30)
        hooks.close()


@pytest.fixture
async def traced() -> AsyncIterator[InMemorySpanExporter]:
    """Tracing on, into memory, for one test (the provider is the process's; it stays, switched off after)."""
    exporter = InMemorySpanExporter()
    tracing.install().add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        tracing.uninstall()


async def test_one_api_command_is_one_trace_from_the_api_span_to_the_update_and_the_append(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, traced: InMemorySpanExporter
) -> None:
    from tests.temporal_fixtures import running_worker
    from workflows.policy_files import DEFAULT_POLICY_PATH

    policy = load_policy(DEFAULT_POLICY_PATH)
    client = await connect_client(target(dev_env))  # traced: tracing was on when it connected
    async with running_worker(client, pool, policy) as cases:
        services = Services(pool=pool, client=client, policy=policy, task_queue=cases.task_queue)
        token = await create_token(pool, f"ops-{uuid.uuid4().hex[:8]}", Role.SERVICE)
        app = create_app(services)
        app.state.services = services  # ASGITransport runs no lifespan
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            headers = {"Authorization": f"Bearer {token}"}
            opened = await http.post("/v1/escalations", json=open_body(), headers=headers)
            assert opened.status_code == 201, opened.text
            case_id = opened.json()["state"]["case_id"]
            cases.track(case_id)
            traced.clear()
            with structlog.testing.capture_logs(
                processors=[structlog.contextvars.merge_contextvars, tracing.add_trace_ids]
            ) as logs:
                noted = await http.post(f"/v1/escalations/{case_id}/notes", json={"text": "traced"}, headers=headers)
            assert noted.status_code == 200, noted.text

        async def finished() -> list[ReadableSpan]:
            return list(traced.get_finished_spans())

        def appended_in_the_commands_trace(found: list[ReadableSpan]) -> bool:
            commands = {s.context.trace_id for s in found if s.name == "POST /v1/escalations/{case_id}/notes"}
            return any(s.name == "event_store.append" and s.context.trace_id in commands for s in found)

        spans = await assert_eventually(finished, appended_in_the_commands_trace, timeout=10)
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1, [(s.name, s.parent) for s in spans]
    root = roots[0]
    assert root.name == "POST /v1/escalations/{case_id}/notes"
    # Spans the opening's worker side ended after its reply may trail in; this command's are its trace.
    spans = [s for s in spans if s.context.trace_id == root.context.trace_id]
    by_id = {s.context.span_id: s for s in spans}

    def ancestry(span: ReadableSpan) -> list[str]:
        names = []
        while span.parent is not None:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    update = next(s for s in spans if s.name.startswith("StartWorkflowUpdate:"))
    handled = next(s for s in spans if s.name.startswith("HandleUpdate:"))
    append = next(s for s in spans if s.name == "event_store.append")
    assert ancestry(update)[-1] == root.name
    assert update.name in ancestry(handled)
    assert handled.name in ancestry(append)
    # The request's log lines carry its trace id (and its request id).
    access = [line for line in logs if line["event"] == "request"]
    assert len(access) == 1
    assert access[0]["trace_id"] == format_trace_id(root.context.trace_id)
    assert access[0]["request_id"] == noted.headers["x-request-id"]
    assert ancestry(append)[-1] == root.name


async def test_the_access_log_has_one_line_per_request_with_its_id_token_name_case_and_status(
    stack: object, http: httpx.AsyncClient
) -> None:
    headers = stack.headers(Role.AGENT)  # type: ignore[attr-defined]
    token = headers["Authorization"].removeprefix("Bearer ")
    with structlog.testing.capture_logs() as logs:
        reply = await http.get("/v1/escalations/no-such-case", headers={**headers, "X-Request-Id": "req-ops-1"})
        bad = await http.get("/v1/escalations", headers={"X-Request-Id": "not a sane id\u0001"})
    assert reply.status_code == 404 and reply.headers["x-request-id"] == "req-ops-1"
    assert bad.status_code == 401 and re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])
    lines = [line for line in logs if line["event"] == "request"]
    assert len(lines) == 2, lines
    first, second = lines
    assert first["request_id"] == "req-ops-1"
    assert first["route"] == "/v1/escalations/{case_id}" and first["case_id"] == "no-such-case"
    assert first["status"] == 404 and first["token"] and first["duration_ms"] >= 0
    assert second["token"] is None and second["status"] == 401
    assert all(token not in repr(line) for line in logs), "the token itself is never logged"


async def test_the_readiness_watcher_reports_a_check_that_cannot_run_as_not_ready_and_keeps_watching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def cannot_run(services: object) -> None:
        raise RuntimeError("the readiness check itself broke")

    monkeypatch.setattr(health, "readiness", cannot_run)
    metrics.READY.set(1)
    stop = asyncio.Event()
    watcher = asyncio.create_task(health.watch_readiness(types.SimpleNamespace(), stop, every=0.05))  # type: ignore[arg-type]
    await assert_eventually(lambda: asyncio.sleep(0, metrics.READY._value.get()), lambda v: v == 0, timeout=5)  # noqa: SLF001
    await asyncio.sleep(0.2)
    assert not watcher.done()  # still watching after several failed rounds
    stop.set()
    await asyncio.wait_for(watcher, timeout=5)
