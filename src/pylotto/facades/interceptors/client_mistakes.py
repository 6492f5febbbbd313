"""The client-mistakes wrapper: a request that is not a message of the method, or a call of a
method the servicer does not implement, is answered with its status — never grpc.aio's UNKNOWN
and an ERROR traceback per call.

- An undecodable request (bytes that are not a valid protobuf message of the method's request
  type) → ``INVALID_ARGUMENT``. grpc.aio would log the DecodeError with a traceback and answer
  UNKNOWN; here the method's request deserializer hands over a marker instead of raising, and the
  handler is not run (for a streamed request: the stream ends with the error at that message).
- A method the generated servicer base answers itself (``context.set_code(UNIMPLEMENTED)`` and
  ``raise NotImplementedError``) → ``UNIMPLEMENTED`` through the error mapping.
- Anything else a handler raises that is not a PylottoError (a bug: no client input should
  reach one) → ``INTERNAL``, its traceback logged once per method, exception type and interval
  — not grpc.aio's UNKNOWN with a traceback per call, which a client repeating the call could
  use to flood the log.

Each mistake is logged at warning, without a traceback, once per kind (undecodable,
unimplemented) and interval, naming the method of the first call
(:class:`pylotto.observability.throttled.ThrottledLog`); the next line says how many were not
logged in between. Listed after the error mapping (so its refusals are mapped and counted like
any other) and before the gates (so a refused call's request is decoded safely too).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from pylotto.core.errors import Internal, InvalidArgument, PylottoError, Unsupported
from pylotto.facades.interceptors.chain import StreamBehavior, UnaryBehavior, Wrapper, as_generator
from pylotto.observability.throttled import ThrottledLog

log = logging.getLogger("pylotto.grpc")


class Undecodable:
    """What the guarded deserializer returns for bytes its message type cannot parse."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class ClientMistakes(Wrapper):
    """Undecodable requests → INVALID_ARGUMENT, unimplemented methods → UNIMPLEMENTED."""

    def __init__(self, throttled: ThrottledLog | None = None) -> None:
        self.throttled = throttled or ThrottledLog(log)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        guard = _MethodGuard(method, self.throttled)
        deserializer = handler.request_deserializer
        kwargs = {
            "request_deserializer": None if deserializer is None else guard.deserializer(
                deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                guard.unary(handler.unary_unary, streamed=False), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                guard.unary(handler.stream_unary, streamed=True), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                guard.stream(as_generator(handler.unary_stream), streamed=False), **kwargs)
        return grpc.stream_stream_rpc_method_handler(
            guard.stream(as_generator(handler.stream_stream), streamed=True), **kwargs)


class _MethodGuard:
    def __init__(self, method: str, throttled: ThrottledLog) -> None:
        self.method = method
        self.throttled = throttled

    def deserializer(self, parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def guarded(data: bytes) -> Any:
            try:
                return parse(data)
            except Exception as exc:  # DecodeError, or whatever a custom parser raises
                return Undecodable(str(exc) or type(exc).__name__)

        return guarded

    def refuse(self, request: Undecodable) -> InvalidArgument:
        self.throttled.warning(
            "grpc undecodable request",
            "gRPC %s: refused a request that is not a valid message of the method (%s): "
            "INVALID_ARGUMENT", self.method, request.reason)
        return InvalidArgument(f"the request is not a valid message of {self.method}: "
                               f"{request.reason}")

    def unimplemented(self, context: grpc.aio.ServicerContext[Any, Any]) -> Unsupported | None:
        """The refusal of a call the generated servicer base answered UNIMPLEMENTED, None for
        a NotImplementedError of anything else (a bug, answered INTERNAL)."""
        if context.code() is not grpc.StatusCode.UNIMPLEMENTED:
            return None
        self.throttled.warning("grpc unimplemented method",
                               "gRPC %s: the method is not implemented: UNIMPLEMENTED",
                               self.method)
        return Unsupported(f"method {self.method} is not implemented")

    def unexpected(self, exc: Exception) -> Internal:
        self.throttled.log(logging.ERROR, f"grpc failure {self.method} {type(exc).__name__}",
                           "gRPC %s failed: INTERNAL", self.method, exc_info=exc)
        return Internal(f"internal error: {type(exc).__name__}")

    async def _checked(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, Undecodable):
                raise self.refuse(request)
            yield request

    def _request(self, request: Any, streamed: bool) -> Any:
        if streamed:
            return self._checked(request)
        if isinstance(request, Undecodable):
            raise self.refuse(request)
        return request

    def unary(self, behavior: UnaryBehavior, *, streamed: bool) -> UnaryBehavior:
        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            checked = self._request(request, streamed)
            try:
                return await behavior(checked, context)
            except PylottoError:
                raise
            except NotImplementedError as exc:
                raise (self.unimplemented(context) or self.unexpected(exc)) from None
            except grpc.aio.BaseError:  # grpc's own: an abort, the server stopping
                raise
            except Exception as exc:
                raise self.unexpected(exc) from None

        return guarded

    def stream(self, behavior: StreamBehavior, *, streamed: bool) -> StreamBehavior:
        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]
                          ) -> AsyncIterator[Any]:
            checked = self._request(request, streamed)
            try:
                async for item in behavior(checked, context):
                    yield item
            except PylottoError:
                raise
            except NotImplementedError as exc:
                raise (self.unimplemented(context) or self.unexpected(exc)) from None
            except grpc.aio.BaseError:  # grpc's own: an abort, the server stopping
                raise
            except Exception as exc:
                raise self.unexpected(exc) from None

        return guarded
