"""Every metric the project exports, defined once (one process may hold the worker, the projector and the API:
the dev stack does), with the functions that record them.

Names follow Prometheus conventions (``escalations_`` prefix, base units, ``_total`` counters). The alert
rules and the dashboard in ``deploy/`` query these names; a test checks that every name they use is defined
here (or is one of Temporal's SDK metrics, served by the worker's runtime on a port of its own).

Recording is cheap (a lock and an add); ``set_enabled(False)`` turns it into a no-op, which is how the
benchmark measures what metrics cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

from workflows.core.events import DeadlineBreached, DeadlineWarning, Escalated, RecordedEvent

_enabled = True

# Temporal's SDK metrics the alerts and the dashboard use, as the worker's runtime exports them
# (worker.sdk_metrics_runtime: seconds, with unit and _total suffixes). Served on their own port.
TEMPORAL_SDK_SAMPLES = (
    "temporal_workflow_task_schedule_to_start_latency_seconds_bucket",
    "temporal_workflow_task_execution_latency_seconds_bucket",
    "temporal_sticky_cache_hit_total",
    "temporal_sticky_cache_size",
    "temporal_num_pollers",
)
# Recorded only once it happens (a cache miss), so absent from a fresh worker's scrape.
TEMPORAL_SDK_SAMPLES_WHEN_SEEN = ("temporal_sticky_cache_miss_total",)

# Lateness of a deadline: seconds from due to detected (the workflow's timer fired) and to stored (the breach
# committed). Buckets reach ten minutes so a stall shows where it sits, not only that it exceeded the top.
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

DEADLINE_LATENESS = Histogram(
    "escalations_deadline_lateness_seconds",
    "Seconds a breached deadline was late: stage=detected (the timer fired) or stored (the breach committed).",
    ["kind", "level", "stage"],
    buckets=LATENESS_BUCKETS,
)
BREACHES = Counter("escalations_breaches_total", "Deadlines breached, by deadline kind and level.", ["kind", "level"])
WARNINGS = Counter(
    "escalations_warnings_total", "Deadline warnings stored, by deadline kind and level.", ["kind", "level"]
)
ESCALATIONS = Counter(
    "escalations_escalations_total", "Cases escalated, by the level reached and the cause.", ["level", "cause"]
)
COMMANDS = Counter(
    "escalations_commands_total",
    "API commands by command and outcome (accepted or refused) and the rule that refused them.",
    ["command", "outcome", "rule"],
)
APPEND_SECONDS = Histogram(
    "escalations_append_seconds", "Seconds from an append's call to its stored reply.", buckets=FAST_BUCKETS
)
APPEND_BATCH = Histogram(
    "escalations_append_batch_size",
    "Appends committed together in one group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
PROJECTION_LAG_EVENTS = Gauge(
    "escalations_projection_lag_events", "Events stored but not yet applied, per projection.", ["projection"]
)
PROJECTION_LAG_SECONDS = Gauge(
    "escalations_projection_lag_seconds",
    "Age of the oldest event a projection has not applied yet (0 when it is at the head).",
    ["projection"],
)
PROJECTION_STOPPED = Gauge(
    "escalations_projection_stopped", "1 while a projection is stopped at a corrupt event.", ["projection"]
)
DELIVERIES = Counter(
    "escalations_deliveries_total",
    "Notification delivery attempts by channel and outcome (delivered, failed, not_configured, dead).",
    ["channel", "outcome"],
)
DELIVERY_LATENCY = Histogram(
    "escalations_delivery_latency_seconds",
    "Seconds from a notification being queued to its channel accepting it.",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 7200.0),
)
DEAD_LETTERS = Gauge("escalations_dead_letters", "Notifications given up on and waiting for re-drive.", ["channel"])
OPEN_CASES = Gauge(
    "escalations_open_cases", "Cases not closed or withdrawn, from the case list.", ["priority", "status", "level"]
)
OVERDUE_DEADLINES = Gauge(
    "escalations_overdue_deadlines",
    "Deadlines past due by more than the watchdog's margin with no breach stored (projections/watchdog.py).",
)
READY = Gauge("escalations_ready", "1 while /readyz would answer ready (checked every few seconds).")
READINESS = Gauge("escalations_readiness_check", "1 per readiness check that passes.", ["check"])
HTTP_REQUESTS = Counter(
    "escalations_http_requests_total",
    "API requests by method, route template and status.",
    ["method", "route", "status"],
)
GC_PAUSE_SECONDS = Histogram(
    "escalations_gc_pause_seconds",
    "Full (generation 2) garbage collections and how long each stopped the process (gc_pauses.py).",
    buckets=FAST_BUCKETS,
)
HTTP_SECONDS = Histogram(
    "escalations_http_request_seconds",
    "API request duration by method and route template.",
    ["method", "route"],
    buckets=FAST_BUCKETS,
)


def set_enabled(enabled: bool) -> None:
    """Record metrics (the default) or not (the benchmark's baseline)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def record_stored(events: Iterable[RecordedEvent]) -> None:
    """Count what the worker stored: breaches with their lateness, warnings, escalations."""
    if not _enabled:
        return
    for event in events:
        data = event.data
        if isinstance(data, DeadlineBreached):
            kind, level = data.kind.value, str(data.level)
            BREACHES.labels(kind, level).inc()
            DEADLINE_LATENESS.labels(kind, level, "detected").observe(
                max(0.0, (data.detected_at - data.due_at).total_seconds())
            )
            DEADLINE_LATENESS.labels(kind, level, "stored").observe(
                max(0.0, (event.recorded_at - data.due_at).total_seconds())
            )
        elif isinstance(data, DeadlineWarning):
            WARNINGS.labels(data.kind.value, str(data.level)).inc()
        elif isinstance(data, Escalated):
            ESCALATIONS.labels(str(data.to_level), data.cause.value).inc()


def record_command(command: str, rule: str | None) -> None:
    """One API command's outcome: accepted (``rule`` None) or refused by ``rule``."""
    if _enabled:
        COMMANDS.labels(command, "refused" if rule else "accepted", rule or "").inc()


def record_append(seconds: float) -> None:
    if _enabled:
        APPEND_SECONDS.observe(seconds)


def record_gc_pause(seconds: float) -> None:
    if _enabled:
        GC_PAUSE_SECONDS.observe(seconds)


def record_append_batch(appends: int) -> None:
    if _enabled:
        APPEND_BATCH.observe(appends)


def record_delivery(channel: str, outcome: str, latency_seconds: float | None) -> None:
    if not _enabled:
        return
    DELIVERIES.labels(channel, outcome).inc()
    if latency_seconds is not None:
        DELIVERY_LATENCY.labels(channel).observe(max(0.0, latency_seconds))


# Label values must stay few: a method outside these (anyone may send any) is counted as OTHER.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    if _enabled:
        method = method if method in _METHODS else "OTHER"
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_SECONDS.labels(method, route).observe(seconds)


def set_labelled(gauge: Gauge, rows: Sequence[tuple[Sequence[str], float]]) -> None:
    """Replace every series of ``gauge`` with ``rows`` (label values, value): a series that is gone from the
    read model goes from the exposition too, instead of keeping its last value."""
    gauge.clear()
    for labels, value in rows:
        gauge.labels(*labels).set(value)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric in this process, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


_served: dict[str, Any] = {}


def serve_once(address: str) -> None:
    """Serve ``/metrics`` on ``host:port`` (a thread of prometheus_client's), once per process: the worker
    and the projector sharing a process (the dev stack) share the endpoint."""
    if address in _served:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"a metrics address is host:port, not {address!r}")
    server, _thread = start_http_server(int(port), addr=host or "0.0.0.0")
    _served[address] = server
