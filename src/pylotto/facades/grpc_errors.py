"""One gRPC interceptor turns every PylottoError into its status code (errors.ERROR_TABLE),
and refuses calls without the API token when the sidecar has one (:mod:`pylotto.security.tokens`).

Handlers follow one convention: unary responses are coroutines, streamed responses are async
generators. Any dialect's servicer gets the mapping by being served with this interceptor.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from pylotto.core.errors import PylottoError, grpc_code
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing, carrier_from
from pylotto.security import tokens as security

log = logging.getLogger("pylotto.grpc")

SIDECAR_SERVICES = ("/pylotto.v1.SidecarInvoke/",)
"""Calls from other sidecars: rate-limited per calling app where they are served."""
MAX_CACHED_METHODS = 1024


async def _abort(context: grpc.aio.ServicerContext[Any, Any], err: PylottoError) -> None:
    log.debug("%s: %s", type(err).__name__, err.message)
    await context.abort(grpc_code(err), err.message)


def _refuse(err: PylottoError) -> Callable[..., Any]:
    async def refused(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        raise err

    return refused


class Recorder:
    """Counts one method's calls in the metrics: ``begin()`` when a call starts, ``end(code,
    seconds)`` when it ends; ``span(context)`` is the call's server span. The base class records
    nothing."""

    tracing: Tracing | None = None
    method = ""

    def span(self, context: grpc.aio.ServicerContext[Any, Any]
             ) -> contextlib.AbstractContextManager[Any]:
        if self.tracing is None or not self.tracing.enabled:
            return contextlib.nullcontext()
        parent = carrier_from(context.invocation_metadata() or ())
        return self.tracing.span(self.method.lstrip("/"), "server", parent)

    def begin(self) -> None:
        pass

    def end(self, code: str, seconds: float) -> None:
        pass


class _MetricsRecorder(Recorder):
    def __init__(self, metrics: Metrics, api: str) -> None:
        self.metrics = metrics
        self.api = api
        self.in_flight = metrics.api_in_flight.labels("grpc")

    def begin(self) -> None:
        self.in_flight.inc()

    def end(self, code: str, seconds: float) -> None:
        self.in_flight.dec()
        self.metrics.api_call("grpc", self.api, code, seconds)


_NO_RECORD = Recorder()


def _wrap_unary(behavior: Callable[..., Awaitable[Any]],
                record: Recorder = _NO_RECORD) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        record.begin()
        started = time.perf_counter()
        code = "OK"
        with record.span(context):  # the error's log line belongs to the call's span
            try:
                return await behavior(request, context)
            except PylottoError as err:
                code = grpc_code(err).name
                await _abort(context, err)
            except BaseException:
                code = _code_of(context)
                raise
            finally:
                record.end(code, time.perf_counter() - started)

    return handler


def _wrap_stream(behavior: Callable[..., AsyncIterator[Any]],
                 record: Recorder = _NO_RECORD) -> Callable[..., AsyncIterator[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        record.begin()
        started = time.perf_counter()
        code = "OK"
        with record.span(context):
            try:
                async for item in behavior(request, context):
                    yield item
            except PylottoError as err:
                code = grpc_code(err).name
                await _abort(context, err)
            except BaseException:
                code = _code_of(context)
                raise
            finally:
                record.end(code, time.perf_counter() - started)

    return handler


def _code_of(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The status a handler ended with when it did not end with a PylottoError."""
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def _refuse_stream(err: PylottoError) -> Callable[..., AsyncIterator[Any]]:
    async def refused(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        raise err
        yield  # an async generator, like every streaming handler

    return refused


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """``api_token``: required on every call but health checks; ``admit(api)``: the rate
    limit of the app's calls (raises ResourceExhausted)."""

    def __init__(self, api_token: str = "",
                 admit: Callable[[str], None] | None = None,
                 metrics: Metrics | None = None, tracing: Tracing | None = None) -> None:
        self.api_token = api_token
        self.admit = admit
        self.metrics = metrics
        self.tracing = tracing
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        """Per method: the servicer's handler and its wrapped twin, built on the first call
        that was not refused (the servicers' handlers are fixed once the server starts)."""

    def _recorder(self, method: str) -> Recorder:
        if security.grpc_exempt(method):
            return _NO_RECORD
        recorder = (_MetricsRecorder(self.metrics, method.rsplit("/", 1)[-1])
                    if self.metrics is not None else Recorder())
        recorder.tracing, recorder.method = self.tracing, method
        return recorder

    def _refusal(self, details: grpc.HandlerCallDetails) -> PylottoError | None:
        if security.grpc_exempt(details.method):
            return None
        if self.api_token:
            given = next((v for k, v in details.invocation_metadata or ()
                          if k == security.TOKEN_HEADER and isinstance(v, str)), None)
            refusal = security.check_token(self.api_token, given)
            if refusal is not None:
                return refusal
        if self.admit is not None and not details.method.startswith(SIDECAR_SERVICES):
            try:
                self.admit(details.method.rsplit("/", 1)[-1])
            except PylottoError as exc:
                return exc
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        refusal = self._refusal(handler_call_details)
        if refusal is None:
            known = self._wrapped.get(method)
            if known is not None and known[0] is handler:
                return known[1]
            wrapped = self._wrap(handler, None, method)
            if len(self._wrapped) < MAX_CACHED_METHODS:  # proxied calls may name any method
                self._wrapped[method] = (handler, wrapped)
            return wrapped
        return self._wrap(handler, refusal, method)

    def _wrap(self, handler: grpc.RpcMethodHandler, refusal: PylottoError | None,
              method: str) -> grpc.RpcMethodHandler:
        record = self._recorder(method)
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            unary = _refuse(refusal) if refusal else handler.unary_unary
            return grpc.unary_unary_rpc_method_handler(_wrap_unary(unary, record), **kwargs)
        if handler.stream_unary:
            unary = _refuse(refusal) if refusal else handler.stream_unary
            return grpc.stream_unary_rpc_method_handler(_wrap_unary(unary, record), **kwargs)
        if handler.unary_stream:
            stream = _refuse_stream(refusal) if refusal else handler.unary_stream
            return grpc.unary_stream_rpc_method_handler(_wrap_stream(stream, record), **kwargs)
        stream = _refuse_stream(refusal) if refusal else handler.stream_stream
        return grpc.stream_stream_rpc_method_handler(_wrap_stream(stream, record), **kwargs)
