"""The error-mapping wrapper: a PylottoError ends the call with its status and message.

The status is the one of :data:`pylotto.core.errors.ERROR_TABLE` (the one table, shared with the
HTTP API); anything else a handler raises is left to grpc (UNKNOWN).
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from pylotto.core.errors import PylottoError, grpc_code
from pylotto.facades.interceptors.chain import StreamBehavior, UnaryBehavior, Wrapper, rewrap

log = logging.getLogger("pylotto.grpc")


class ErrorMapping(Wrapper):
    """Every method's PylottoError → ``context.abort(status, message)``."""

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        return rewrap(handler, _unary, _stream)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], err: PylottoError) -> None:
    log.debug("%s: %s", type(err).__name__, err.message)
    await context.abort(grpc_code(err), err.message)


def _unary(behavior: UnaryBehavior) -> UnaryBehavior:
    async def mapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except PylottoError as err:
            await _abort(context, err)

    return mapped


def _stream(behavior: StreamBehavior) -> StreamBehavior:
    async def mapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async for item in behavior(request, context):
                yield item
        except PylottoError as err:
            await _abort(context, err)

    return mapped
