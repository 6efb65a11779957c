"""OpenTelemetry traces: off unless an OTLP endpoint is configured, and then one trace per API request through
the Temporal client, the workflow (its update handler and local activities, by Temporal's own interceptor)
and the event store's append.

Configuration is OpenTelemetry's own: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
(OTLP over HTTP, e.g. ``http://collector:4318``) turns tracing on; ``OTEL_SERVICE_NAME`` names the process
(default ``escalations-<component>``); the exporter reads its other ``OTEL_EXPORTER_OTLP_*`` settings itself.
With tracing off nothing is installed: no interceptor on the Temporal client, and ``span`` yields at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import format_span_id, format_trace_id

_on = False
_tracer = trace.get_tracer("escalations")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def configure_from_env(component: str, env: Mapping[str, str] | None = None) -> bool:
    """Export spans over OTLP/HTTP when an endpoint is configured; returns whether tracing is on.

    Called once per process before its Temporal client connects (the client's tracing plugin is chosen then).
    """
    env = os.environ if env is None else env
    if _on:
        return True  # one provider per process: the dev stack's worker and API share it
    if not any(env.get(name) for name in ENDPOINT_VARIABLES):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = install(Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or f"escalations-{component}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return True


def install(resource: Any = None) -> Any:
    """Trace from now on; returns the process's tracer provider, for the caller to add its span processors.

    The provider is Temporal's replay-safe one (span ids drawn deterministically inside workflows, no span
    emitted twice on replay), which its OpenTelemetry plugin requires. OpenTelemetry lets a process set its
    provider once: a second install (tests) gets the provider in force.
    """
    global _on
    from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider, create_tracer_provider

    current = trace.get_tracer_provider()
    if not isinstance(current, ReplaySafeTracerProvider):
        current = create_tracer_provider(resource=resource)
        trace.set_tracer_provider(current)
    _on = True
    return current


def uninstall() -> None:
    """Stop tracing (tests): new clients get no interceptor, new apps no server span, ``span`` yields at once.
    The provider stays the process's (OpenTelemetry does not let it be replaced)."""
    global _on
    _on = False


def enabled() -> bool:
    return _on


def client_plugins() -> list[Any]:
    """Plugins for ``Client.connect``: Temporal's OpenTelemetry plugin when tracing is on. On the client, it
    also traces the workers built on that client: an update's handler runs in the trace of the request that
    sent it (its headers), and so do the local activities it starts and our spans inside them."""
    if not _on:
        return []
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin

    return [OpenTelemetryPlugin(add_temporal_spans=True)]


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: Any = None) -> Iterator[None]:
    """A span around the block, child of the current one; nothing at all while tracing is off."""
    if not _on:
        yield
        return
    with _tracer.start_as_current_span(name, attributes=dict(attributes or {}), kind=kind or trace.SpanKind.INTERNAL):
        yield


def add_trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the current trace and span ids on every line logged inside a span."""
    if _on:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event.setdefault("trace_id", format_trace_id(context.trace_id))
            event.setdefault("span_id", format_span_id(context.span_id))
    return event
