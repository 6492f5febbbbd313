"""The one grpc.aio interceptor of a server, composing its concerns once per method.

grpc.aio awaits every interceptor's ``intercept_service`` on every call, so a server has one
interceptor, :class:`Interceptors`, and each concern is a small object it composes, listed
outermost first like a web framework's middlewares:

- a :class:`Wrapper` wraps a method's handler (``wrap(method, handler)``); the composition of
  every wrapper is built on the method's first call and cached, so a call costs one cache look-up
  and the wrappers' own frames.
- a :class:`Gate` looks at each call before it runs (``check(details)``) and may refuse it with a
  PylottoError; a refused call is served by a handler raising the refusal, wrapped by the
  wrappers listed before the gate (those after it never see the call).

Handlers follow one convention: unary responses are coroutines, streamed responses are async
generators. A streaming handler written the other way grpc.aio allows — a coroutine calling
``context.write`` (grpc_health's ``Watch``) — is turned into an async generator yielding nothing
by :func:`rewrap`, so every wrapper sees the one convention.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from pylotto.core.errors import PylottoError

Behavior = Callable[..., Any]
"""A handler's function: ``(request or request iterator, context)`` → a coroutine (unary
response) or an async iterator (streamed response)."""
UnaryBehavior = Callable[..., Awaitable[Any]]
StreamBehavior = Callable[..., AsyncIterator[Any]]

MAX_CACHED_METHODS = 1024
"""Methods whose wrapped handler is kept (proxied calls may name any method)."""


class Wrapper(ABC):
    """A concern built into a method's handler once, when the method is first called."""

    @abstractmethod
    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` of ``method`` (``/package.Service/Method``) with the concern around it,
        or ``handler`` itself when the concern has nothing to do for the method."""


class Gate(ABC):
    """A concern deciding per call, before the call's handler runs, whether it may run."""

    @abstractmethod
    def check(self, details: grpc.HandlerCallDetails) -> PylottoError | None:
        """The refusal of the call (None: it may run)."""


def check_prefixes(who: str, prefixes: tuple[str, ...]) -> None:
    """Raise ValueError unless ``prefixes`` is a tuple of method prefixes (``/package.`` or
    ``/package.Service/``), as a gate's ``exempt`` argument."""
    if not isinstance(prefixes, tuple) or not all(
            isinstance(p, str) and p.startswith("/") and len(p) > 1 for p in prefixes):
        raise ValueError(f"{who}: exempt must be a tuple of method prefixes starting with '/', "
                         f"not {prefixes!r}")


def rewrap(handler: grpc.RpcMethodHandler, unary: Callable[[UnaryBehavior], UnaryBehavior],
           stream: Callable[[StreamBehavior], StreamBehavior]) -> grpc.RpcMethodHandler:
    """A handler of the same kind and serializers as ``handler`` whose function is ``unary``
    (unary response) or ``stream`` (streamed response) of ``handler``'s."""
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            stream(as_generator(handler.unary_stream)), **kwargs)
    return grpc.stream_stream_rpc_method_handler(
        stream(as_generator(handler.stream_stream)), **kwargs)


def as_generator(behavior: Behavior) -> StreamBehavior:
    """A streaming ``behavior`` as an async generator: itself when it is one, else (a coroutine
    writing with ``context.write``) a generator awaiting it and yielding nothing."""
    if not inspect.iscoroutinefunction(behavior):
        return behavior

    async def writes_itself(request: Any, context: grpc.aio.ServicerContext[Any, Any]
                            ) -> AsyncIterator[Any]:
        await behavior(request, context)
        return
        yield  # an async generator

    return writes_itself


def refusing(handler: grpc.RpcMethodHandler, refusal: PylottoError) -> grpc.RpcMethodHandler:
    """``handler``'s twin raising ``refusal`` instead of running."""

    def unary(_: UnaryBehavior) -> UnaryBehavior:
        async def refused(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            raise refusal

        return refused

    def stream(_: StreamBehavior) -> StreamBehavior:
        async def refused(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            raise refusal
            yield  # an async generator, like every streaming handler

        return refused

    return rewrap(handler, unary, stream)


class Interceptors(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The server's concerns in order, outermost first; a None entry (a concern that is off) is
    left out."""

    def __init__(self, *layers: Wrapper | Gate | None,
                 max_cached: int = MAX_CACHED_METHODS) -> None:
        if isinstance(max_cached, bool) or not isinstance(max_cached, int) or max_cached < 0:
            raise ValueError(f"max_cached must be a count of methods, not {max_cached!r}")
        wrappers: list[Wrapper] = []
        gates: list[tuple[Callable[[grpc.HandlerCallDetails], PylottoError | None],
                          tuple[Wrapper, ...]]] = []
        for layer in layers:
            if isinstance(layer, Wrapper):
                wrappers.append(layer)
            elif isinstance(layer, Gate):
                gates.append((layer.check, tuple(wrappers)))
            elif layer is not None:
                raise TypeError(f"not a gRPC Wrapper or Gate: {layer!r}")
        self.layers = tuple(layer for layer in layers if layer is not None)
        self.max_cached = max_cached
        self._wrappers = tuple(wrappers)
        self._gates = tuple(gates)
        """Per gate: its check and the wrappers a call it refuses is served through."""
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        """Per method: the servicer's handler and its wrapped twin, built on the first call
        that was not refused (the servicers' handlers are fixed once the server starts)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        for check, outer in self._gates:
            refusal = check(handler_call_details)
            if refusal is not None:
                return _compose(method, refusing(handler, refusal), outer)
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = _compose(method, handler, self._wrappers)
        if len(self._wrapped) < self.max_cached:
            self._wrapped[method] = (handler, wrapped)
        return wrapped


def _compose(method: str, handler: grpc.RpcMethodHandler,
             wrappers: tuple[Wrapper, ...]) -> grpc.RpcMethodHandler:
    for wrapper in reversed(wrappers):
        handler = wrapper.wrap(method, handler)
    return handler
