"""One gRPC interceptor turns every PylottoError into its status code (errors.ERROR_TABLE),
and refuses calls without the API token when the sidecar has one (:mod:`pylotto.security`).

Handlers follow one convention: unary responses are coroutines, streamed responses are async
generators. Any dialect's servicer gets the mapping by being served with this interceptor.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from pylotto import security
from pylotto.errors import PylottoError, grpc_code

log = logging.getLogger("pylotto.grpc")

SIDECAR_SERVICES = ("/pylotto.v1.SidecarInvoke/",)
"""Calls from other sidecars: rate-limited per calling app where they are served."""


async def _abort(context: grpc.aio.ServicerContext[Any, Any], err: PylottoError) -> None:
    log.debug("%s: %s", type(err).__name__, err.message)
    await context.abort(grpc_code(err), err.message)


def _refuse(err: PylottoError) -> Callable[..., Any]:
    async def refused(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        raise err

    return refused


def _wrap_unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except PylottoError as err:
            await _abort(context, err)

    return handler


def _wrap_stream(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def handler(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async for item in behavior(request, context):
                yield item
        except PylottoError as err:
            await _abort(context, err)

    return handler


def _refuse_stream(err: PylottoError) -> Callable[..., AsyncIterator[Any]]:
    async def refused(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        raise err
        yield  # an async generator, like every streaming handler

    return refused


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """``api_token``: required on every call but health checks; ``admit(api)``: the rate
    limit of the app's calls (raises ResourceExhausted)."""

    def __init__(self, api_token: str = "",
                 admit: Callable[[str], None] | None = None) -> None:
        self.api_token = api_token
        self.admit = admit

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
        refusal = self._refusal(handler_call_details)
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            unary = _refuse(refusal) if refusal else handler.unary_unary
            return grpc.unary_unary_rpc_method_handler(_wrap_unary(unary), **kwargs)
        if handler.stream_unary:
            unary = _refuse(refusal) if refusal else handler.stream_unary
            return grpc.stream_unary_rpc_method_handler(_wrap_unary(unary), **kwargs)
        if handler.unary_stream:
            stream = _refuse_stream(refusal) if refusal else handler.unary_stream
            return grpc.unary_stream_rpc_method_handler(_wrap_stream(stream), **kwargs)
        stream = _refuse_stream(refusal) if refusal else handler.stream_stream
        return grpc.stream_stream_rpc_method_handler(_wrap_stream(stream), **kwargs)
