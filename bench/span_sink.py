"""An OTLP/gRPC trace receiver that only counts spans: the benchmarked sidecar exports its
traces here, so tracing is on and exporting for real while it is measured."""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


class SpanSink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans = 0
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def Export(self, request: Any, context: Any) -> Any:
        self.spans += sum(len(scope.spans) for resource in request.resource_spans
                          for scope in resource.scope_spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self) -> SpanSink:
        self._server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(None)

    def tracing(self, sampling_rate: float) -> dict[str, Any]:
        """The sidecar's ``tracing`` section, exporting here."""
        return {"sampling_rate": sampling_rate, "exporter": "otlp-grpc",
                "endpoint": f"127.0.0.1:{self.port}"}
