"""Tracing with OpenTelemetry: W3C trace context in, spans out, trace context carried on.

    tracing:
      sampling_rate: 1              # 0..1 of new traces; a caller's sampled flag is kept
      exporter: otlp-grpc           # otlp-grpc, otlp-http, zipkin or console
      endpoint: 127.0.0.1:4317      # where spans go (default by exporter, see below)

Exporters and their default endpoints: ``otlp-grpc`` (OTLP over gRPC to an OpenTelemetry
collector, Jaeger...: ``127.0.0.1:4317``), ``otlp-http`` (OTLP protobuf over HTTP:
``http://127.0.0.1:4318/v1/traces``), ``zipkin`` (Zipkin's JSON v2 API:
``http://127.0.0.1:9411/api/v2/spans``), ``console`` (spans printed to stdout).

Spans: one server span per API call (gRPC and HTTP; its parent is the caller's
``traceparent`` / ``tracestate``, from gRPC metadata or HTTP headers, Layotto's
``rpc_trace_context.traceparent`` too), one client span per component call and per call to
another sidecar, one consumer span per pub/sub delivery (its parent: the ``traceparent`` of the
CloudEvent). What goes on carries the current span: the ``traceparent`` header of an invocation
(to the next sidecar and to the app), the ``traceparent`` of a published CloudEvent, and of an
event handed to the app — so one trace shows app A → sidecar A → broker → sidecar B → app B.
Without a ``tracing`` section nothing is recorded and callers' trace context passes through
unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
LAYOTTO_PREFIX = "rpc_trace_context."


class TracingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sampling_rate: float = Field(1.0, ge=0.0, le=1.0, alias="samplingRate")
    exporter: Literal["otlp-grpc", "otlp-http", "zipkin", "console"] = "otlp-grpc"
    endpoint: str = Field("", description="default: the exporter's usual local address")
    service_name: str = Field("", description="default: the app id, else pylotto")


def carrier_from(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """The W3C trace context among metadata or header pairs (Layotto's keys accepted)."""
    found: dict[str, str] = {}
    for key, value in pairs:
        name = key.lower()
        name = name.removeprefix(LAYOTTO_PREFIX)
        if name in (TRACEPARENT, TRACESTATE) and isinstance(value, str):
            found.setdefault(name, value)
    return found


class Tracing:
    """Spans for one sidecar; a disabled instance (no config) records nothing."""

    def __init__(self, config: TracingConfig | None, app_id: str) -> None:
        self.enabled = config is not None
        self._provider: Any = None
        self._tracer: Any = None
        if config is None:
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        name = config.service_name or app_id or "pylotto"
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": name}),
            sampler=ParentBased(TraceIdRatioBased(config.sampling_rate)))
        self._provider.add_span_processor(BatchSpanProcessor(_exporter(config),
                                                             schedule_delay_millis=500))
        self._tracer = self._provider.get_tracer("pylotto")

    @contextlib.contextmanager
    def span(self, name: str, kind: str, parent: Mapping[str, str] | None = None,
             **attributes: str) -> Iterator[Any]:
        """A span (``kind``: server, client, consumer, producer) made current for the block;
        ``parent``: a W3C carrier to continue."""
        if not self.enabled:
            yield None
            return
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        context = TraceContextTextMapPropagator().extract(dict(parent)) if parent else None
        with self._tracer.start_as_current_span(
                name, context=context, kind=getattr(trace.SpanKind, kind.upper()),
                attributes=attributes) as current:
            yield current

    def carrier(self, fallback: Mapping[str, str] | None = None) -> dict[str, str]:
        """The current span's trace context to send on (``fallback``, the caller's, when
        tracing is off or no span is current)."""
        if self.enabled:
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )

            out: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(out)
            if out:
                return out
        return dict(fallback or {})

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        if self._provider is not None:
            self._provider.shutdown()


DEFAULT_ENDPOINTS = {
    "otlp-grpc": "127.0.0.1:4317",
    "otlp-http": "http://127.0.0.1:4318/v1/traces",
    "zipkin": "http://127.0.0.1:9411/api/v2/spans",
}


def _exporter(config: TracingConfig) -> Any:
    endpoint = config.endpoint or DEFAULT_ENDPOINTS.get(config.exporter, "")
    if config.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if config.exporter == "otlp-http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as OTLPHttpSpanExporter,
        )

        return OTLPHttpSpanExporter(endpoint=endpoint)
    if config.exporter == "zipkin":
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        return ZipkinExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint, insecure=True)
