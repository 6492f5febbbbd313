"""The last traces this sidecar recorded, kept in memory for the dashboard: an OpenTelemetry
span processor holding the most recent :data:`MAX_TRACES` traces (their first
:data:`MAX_SPANS` spans each). Only spans the sampling decision recorded reach it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

MAX_TRACES = 50
MAX_SPANS = 100
KINDS = {0: "internal", 1: "server", 2: "client", 3: "producer", 4: "consumer"}


class SpanBuffer(SpanProcessor):
    def __init__(self, max_traces: int = MAX_TRACES, max_spans: int = MAX_SPANS) -> None:
        self.max_traces, self.max_spans = max_traces, max_spans
        self._traces: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()  # the batch exporter's thread does not call us, but
        # a processor may be called from any thread that ends a span

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if context is None:
            return
        trace_id = f"{context.trace_id:032x}"
        parent = span.parent
        record = {
            "name": span.name,
            "kind": KINDS.get(getattr(span.kind, "value", 0), "internal"),
            "span_id": f"{context.span_id:016x}",
            "parent_id": f"{parent.span_id:016x}" if parent is not None else "",
            "start_ns": span.start_time or 0,
            "end_ns": span.end_time or 0,
            "status": span.status.status_code.name if span.status else "UNSET",
            "attributes": {k: v for k, v in (span.attributes or {}).items()
                           if isinstance(v, str | int | float | bool)},
        }
        with self._lock:
            spans = self._traces.pop(trace_id, [])
            if len(spans) < self.max_spans:
                spans.append(record)
            self._traces[trace_id] = spans  # most recent last
            while len(self._traces) > self.max_traces:
                self._traces.popitem(last=False)

    def traces(self) -> list[dict[str, Any]]:
        """The traces, most recent first: id, the root span's name (the earliest span when
        the root was recorded elsewhere), start, duration and the spans, each with its
        offset from the trace's start (ms)."""
        with self._lock:
            items = [(trace_id, list(spans)) for trace_id, spans in self._traces.items()]
        out = []
        for trace_id, spans in reversed(items):
            start = min(s["start_ns"] for s in spans)
            end = max(s["end_ns"] for s in spans)
            ids = {s["span_id"] for s in spans}
            roots = [s for s in spans if s["parent_id"] not in ids]
            root = min(roots or spans, key=lambda s: s["start_ns"])
            out.append({
                "trace_id": trace_id, "root": root["name"], "start_ns": start,
                "duration_ms": round((end - start) / 1e6, 3),
                "spans": [{
                    "name": s["name"], "kind": s["kind"], "span_id": s["span_id"],
                    "parent_id": s["parent_id"], "status": s["status"],
                    "offset_ms": round((s["start_ns"] - start) / 1e6, 3),
                    "duration_ms": round((s["end_ns"] - s["start_ns"]) / 1e6, 3),
                    "attributes": s["attributes"],
                } for s in sorted(spans, key=lambda s: s["start_ns"])],
            })
        return out

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
