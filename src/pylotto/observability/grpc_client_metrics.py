"""daprd's gRPC client metrics (``dapr_grpc_io_client_*``) for the channels the sidecar
opens to its app: a grpc.aio client interceptor counting each unary call by full method and
status, with its round-trip time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from pylotto.observability.dapr_metrics import DaprMetrics


class ClientMetrics(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, metrics: DaprMetrics) -> None:
        self.metrics = metrics

    async def intercept_unary_unary(self, continuation: Callable[..., Any],
                                    client_call_details: grpc.aio.ClientCallDetails,
                                    request: Any) -> Any:
        method = client_call_details.method
        name = method.decode() if isinstance(method, bytes) else str(method)
        started = time.perf_counter()
        call = await continuation(client_call_details, request)
        try:
            code = await call.code()
        except grpc.aio.AioRpcError as exc:  # pragma: no cover - code() does not raise
            code = exc.code()
        self.metrics.grpc_sent(name, code.name, time.perf_counter() - started)
        return call
