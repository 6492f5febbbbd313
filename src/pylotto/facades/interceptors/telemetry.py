"""The telemetry wrapper: each call's server span, and its count, duration and in-flight gauge.

Metrics (:mod:`pylotto.observability.metrics`): ``pylotto_api_requests_total`` and
``pylotto_api_latency_seconds`` {dialect="grpc", api=<RPC name>, code=<status name>},
``pylotto_api_in_flight`` {dialect="grpc"}. Span (:mod:`pylotto.observability.tracing`): a
server span named ``package.Service/Method``, continuing the trace of the call's metadata.
Health checks and reflection are neither counted nor traced.

Listed before the error mapping, so that a PylottoError's status is the one counted and the
mapping's log line belongs to the call's span.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import grpc

from pylotto.core.errors import PylottoError, grpc_code
from pylotto.facades.interceptors.chain import (
    StreamBehavior,
    UnaryBehavior,
    Wrapper,
    check_prefixes,
    rewrap,
)
from pylotto.observability import span_attributes
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing, carrier_from
from pylotto.security import tokens as security


class Telemetry(Wrapper):
    """``metrics`` and/or ``tracing``: where calls are recorded; ``exempt``: prefixes of the
    methods left out."""

    def __init__(self, metrics: Metrics | None = None, tracing: Tracing | None = None,
                 exempt: tuple[str, ...] = security.EXEMPT_GRPC_SERVICES) -> None:
        if metrics is None and tracing is None:
            raise ValueError("Telemetry needs metrics or tracing (or both)")
        if metrics is not None and not isinstance(metrics, Metrics):
            raise TypeError(f"Telemetry: metrics must be a Metrics, not {metrics!r}")
        if tracing is not None and not isinstance(tracing, Tracing):
            raise TypeError(f"Telemetry: tracing must be a Tracing, not {tracing!r}")
        check_prefixes("Telemetry", exempt)
        self.metrics = metrics
        self.tracing = tracing
        self.exempt = exempt

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if method.startswith(self.exempt):
            return handler
        record = (_Recorder(self.tracing, method) if self.metrics is None
                  else _MetricsRecorder(self.tracing, method, self.metrics))
        return rewrap(handler, record.unary, record.stream)


class _Recorder:
    """One method's span; the base records no metrics."""

    def __init__(self, tracing: Tracing | None, method: str) -> None:
        self.tracing = tracing
        self.name = method.lstrip("/")

    def span(self, context: grpc.aio.ServicerContext[Any, Any]
             ) -> contextlib.AbstractContextManager[Any]:
        if self.tracing is None or not self.tracing.enabled:
            return contextlib.nullcontext()
        parent = carrier_from(context.invocation_metadata() or ())
        return self.tracing.span(self.name, "server", parent,
                                 **span_attributes.grpc_server(self.name))

    def begin(self) -> None:
        pass

    def end(self, code: str, seconds: float) -> None:
        pass

    def unary(self, behavior: UnaryBehavior) -> UnaryBehavior:
        begin, end, span = self.begin, self.end, self.span

        async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            begin()
            started = time.perf_counter()
            code = "OK"
            with span(context) as current:
                try:
                    return await behavior(request, context)
                except PylottoError as err:  # not mapped yet: the status it maps to
                    code = grpc_code(err).name
                    raise
                except BaseException:
                    code = _code_of(context)
                    raise
                finally:
                    span_attributes.grpc_status(current, code)
                    end(code, time.perf_counter() - started)

        return measured

    def stream(self, behavior: StreamBehavior) -> StreamBehavior:
        begin, end, span = self.begin, self.end, self.span

        async def measured(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            begin()
            started = time.perf_counter()
            code = "OK"
            with span(context) as current:
                try:
                    async for item in behavior(request, context):
                        yield item
                except PylottoError as err:
                    code = grpc_code(err).name
                    raise
                except BaseException:
                    code = _code_of(context)
                    raise
                finally:
                    span_attributes.grpc_status(current, code)
                    end(code, time.perf_counter() - started)

        return measured


class _MetricsRecorder(_Recorder):
    def __init__(self, tracing: Tracing | None, method: str, metrics: Metrics) -> None:
        super().__init__(tracing, method)
        self.metrics = metrics
        self.method = method
        self.api = method.rsplit("/", 1)[-1]
        self.in_flight = metrics.api_in_flight.labels("grpc")

    def begin(self) -> None:
        self.in_flight.inc()

    def end(self, code: str, seconds: float) -> None:
        self.in_flight.dec()
        self.metrics.api_call("grpc", self.api, code, seconds)
        self.metrics.dapr.grpc_served(self.method, code, seconds)


def _code_of(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The status a call ended with when it did not end with a PylottoError (an abort: its
    code; an exception or a cancellation: UNKNOWN)."""
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
