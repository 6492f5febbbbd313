"""Tracing with OpenTelemetry: W3C trace context in, spans out, trace context carried on.

    tracing:
      sampling_rate: 1              # 0..1 of new traces; a caller's sampled flag is kept
      exporter: otlp-grpc           # otlp-grpc, otlp-http, zipkin, console or none
      endpoint: 127.0.0.1:4317      # where spans go (default by exporter, see below)

Exporters and their default endpoints: ``otlp-grpc`` (OTLP over gRPC to an OpenTelemetry
collector, Jaeger...: ``127.0.0.1:4317``), ``otlp-http`` (OTLP protobuf over HTTP:
``http://127.0.0.1:4318/v1/traces``), ``zipkin`` (Zipkin's JSON v2 API:
``http://127.0.0.1:9411/api/v2/spans``), ``console`` (spans printed to stdout).

Spans: one server span per API call (gRPC and HTTP; its parent is the caller's
``traceparent`` / ``tracestate``, from gRPC metadata or HTTP headers, Layotto's
``rpc_trace_context.traceparent`` too), one client span per component call made within a
traced call (background work such as a store's polling starts no trace) and per call to
another sidecar, one consumer span per pub/sub delivery (its parent: the ``traceparent`` of the
CloudEvent), one consumer span per job trigger (``trigger job``; the app gets its
context). What goes on carries the current span: the ``traceparent`` header of an invocation
(to the next sidecar and to the app), the ``traceparent`` of a published CloudEvent, and of an
event handed to the app — so one trace shows app A → sidecar A → broker → sidecar B → app B.
Without a ``tracing`` section nothing is recorded and callers' trace context passes through
unchanged.

Sampling is decided where a trace begins: a new trace is recorded with probability
``sampling_rate``; a caller's ``traceparent`` decides for its trace (its sampled flag). A trace
that is not recorded costs no OpenTelemetry work at all (no span objects, no ids from the SDK):
its context — the caller's, or for a new trace a fresh ``traceparent`` flagged not sampled — is
only carried on, so the next sidecar does not record it either and logs still show its trace id.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
GRPC_TRACE_BIN = "grpc-trace-bin"
"""OpenCensus' binary trace context, which Dapr sends to gRPC apps next to ``traceparent``."""
LAYOTTO_PREFIX = "rpc_trace_context."


class TracingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sampling_rate: float = Field(1.0, ge=0.0, le=1.0, alias="samplingRate")
    exporter: Literal["otlp-grpc", "otlp-http", "zipkin", "console", "none"] = "otlp-grpc"
    """``none``: spans kept only in memory, for the dashboard's last traces."""
    endpoint: str = Field("", description="default: the exporter's usual local address")
    secure: bool = Field(False, description="otlp-grpc over TLS (a Dapr Configuration's "
                         "otel.isSecure)")
    service_name: str = Field("", description="default: the app id, else pylotto")


_UNSAMPLED: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "pylotto_unsampled_trace", default=None)
"""The context of the trace being served when it is not recorded (set by :meth:`Tracing.span`)."""
_NO_SPAN = contextlib.nullcontext()


class _NotRecorded(contextlib.AbstractContextManager[None]):
    """The block of a trace that is not recorded: its context is current, for ``carrier()``."""

    def __init__(self, carrier: dict[str, str]) -> None:
        self.carrier = carrier
        self._token: contextvars.Token[dict[str, str] | None] | None = None

    def __enter__(self) -> None:
        self._token = _UNSAMPLED.set(self.carrier)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _UNSAMPLED.reset(self._token)


def sampled_flag(traceparent: str) -> bool | None:
    """The sampled flag of a W3C ``traceparent``; None when it is not a valid one."""
    parts = traceparent.strip().split("-")
    if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    return bool(flags & 1) if trace_id and span_id else None


def current_trace_id() -> str:
    """The trace id being served (recorded or not); empty outside a trace."""
    unsampled = _UNSAMPLED.get()
    if unsampled is not None:
        parts = unsampled.get(TRACEPARENT, "").split("-")
        return parts[1] if len(parts) > 1 else ""
    if "opentelemetry.trace" not in sys.modules:
        return ""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def carrier_from(pairs: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """The W3C trace context among metadata or header pairs (Layotto's keys accepted; a
    ``grpc-trace-bin`` value stands for a missing ``traceparent``, as Dapr reads it)."""
    found: dict[str, str] = {}
    binary = None
    for key, value in pairs:
        name = key.lower()
        name = name.removeprefix(LAYOTTO_PREFIX)
        if name in (TRACEPARENT, TRACESTATE) and isinstance(value, str):
            found.setdefault(name, value)
        elif name == GRPC_TRACE_BIN and isinstance(value, bytes):
            binary = value
    if TRACEPARENT not in found and binary is not None:
        traceparent = traceparent_of_binary(binary)
        if traceparent:
            found[TRACEPARENT] = traceparent
    return found


def binary_of_traceparent(traceparent: str) -> bytes | None:
    """The ``grpc-trace-bin`` form of a W3C ``traceparent`` (version 0; field 0 the trace id,
    1 the span id, 2 the trace options); None for an invalid ``traceparent``."""
    if sampled_flag(traceparent) is None:
        return None
    _, trace_id, span_id, flags = traceparent.strip().split("-")[:4]
    return (b"\x00\x00" + bytes.fromhex(trace_id) + b"\x01" + bytes.fromhex(span_id)
            + b"\x02" + bytes.fromhex(flags))


def traceparent_of_binary(binary: bytes) -> str:
    """The W3C ``traceparent`` of a ``grpc-trace-bin`` value; "" when it holds none."""
    if len(binary) < 27 or binary[0] != 0 or binary[1] != 0 or binary[18] != 1:
        return ""
    trace_id, span_id = binary[2:18].hex(), binary[19:27].hex()
    flags = binary[28] if len(binary) >= 29 and binary[27] == 2 else 0
    traceparent = f"00-{trace_id}-{span_id}-{flags:02x}"
    return traceparent if sampled_flag(traceparent) is not None else ""


def grpc_trace_metadata(carrier: Mapping[str, str]) -> list[tuple[str, str | bytes]]:
    """gRPC metadata for a W3C carrier, as Dapr sends it to gRPC apps: ``traceparent``,
    ``tracestate`` (when there is one) and ``grpc-trace-bin``."""
    traceparent = carrier.get(TRACEPARENT, "")
    binary = binary_of_traceparent(traceparent) if traceparent else None
    if binary is None:
        return []
    out: list[tuple[str, str | bytes]] = [(TRACEPARENT, traceparent)]
    if carrier.get(TRACESTATE):
        out.append((TRACESTATE, carrier[TRACESTATE]))
    out.append((GRPC_TRACE_BIN, binary))
    return out


class Tracing:
    """Spans for one sidecar; a disabled instance (no config) records nothing."""

    def __init__(self, config: TracingConfig | None, app_id: str) -> None:
        self.enabled = config is not None
        self.sampling_rate = config.sampling_rate if config is not None else 0.0
        self._provider: Any = None
        self._tracer: Any = None
        self.buffer: Any = None
        """The last traces recorded (:class:`~pylotto.observability.span_buffer.SpanBuffer`),
        for the dashboard; None when tracing is off."""
        if config is None:
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased

        from pylotto.observability.span_buffer import SpanBuffer

        name = config.service_name or app_id or "pylotto"
        self._provider = TracerProvider(  # what reaches the SDK is recorded: span() decided
            resource=Resource.create({"service.name": name}), sampler=ParentBased(ALWAYS_ON))
        self.buffer = SpanBuffer()
        self._provider.add_span_processor(self.buffer)
        if config.exporter != "none":
            self._provider.add_span_processor(BatchSpanProcessor(_exporter(config),
                                                                 schedule_delay_millis=500))
        self._tracer = self._provider.get_tracer("pylotto")

    def span(self, name: str, kind: str, parent: Mapping[str, str] | None = None, /,
             **attributes: str | int) -> contextlib.AbstractContextManager[Any]:
        """A span (``kind``: server, client, consumer, producer) made current for the block,
        with ``attributes`` (:mod:`pylotto.observability.span_attributes`; the block gets the
        span, to set more, or None when nothing is recorded); ``parent``: a W3C carrier to
        continue. Within a trace that is not recorded, and for a
        new trace left out by the sampling rate, no span: the trace's context is carried."""
        if not self.enabled:
            return _NO_SPAN
        traceparent = parent.get(TRACEPARENT) if parent else None
        if traceparent:
            sampled = sampled_flag(traceparent)
            if sampled:
                return self._recorded(name, kind, parent, attributes)
            if sampled is False:
                return _NotRecorded(dict(parent or {}))
        if _UNSAMPLED.get() is not None:  # inside a trace that is not recorded
            return _NO_SPAN
        if self._in_recorded_span() or random.random() < self.sampling_rate:
            return self._recorded(name, kind, None, attributes)
        trace_id, span_id = random.getrandbits(128) or 1, random.getrandbits(64) or 1
        return _NotRecorded({TRACEPARENT: f"00-{trace_id:032x}-{span_id:016x}-00"})

    def child(self, name: str, kind: str,
              **attributes: str | int) -> contextlib.AbstractContextManager[Any]:
        """A span only inside a recorded one (a component call within an API call, a
        delivery, a job trigger): background work — a store's polling — starts no trace."""
        if not self.enabled or _UNSAMPLED.get() is not None or not self._in_recorded_span():
            return _NO_SPAN
        return self._recorded(name, kind, None, attributes)

    @staticmethod
    def _in_recorded_span() -> bool:
        from opentelemetry import trace

        return bool(trace.get_current_span().get_span_context().is_valid)

    @contextlib.contextmanager
    def _recorded(self, name: str, kind: str, parent: Mapping[str, str] | None,
                  attributes: Mapping[str, str | int]) -> Iterator[Any]:
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
            unsampled = _UNSAMPLED.get()
            if unsampled is not None:
                return dict(unsampled)
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

    return OTLPSpanExporter(endpoint=endpoint, insecure=not config.secure)
