"""The error-mapping wrapper: a PylottoError ends the call with its status and message.

The Layotto dialect (and pylotto's own services) answer the status of
:data:`pylotto.core.errors.ERROR_TABLE` with the error's message. Dapr's service answers as
daprd does (:func:`pylotto.core.dapr_errors.render`): Dapr's code and text, and the
``google.rpc.Status`` details (``ErrorInfo``, ``ResourceInfo``, ``BadRequest``...) in the
``grpc-status-details-bin`` trailer the Dapr SDKs read. Anything else a handler raises is
left to grpc (UNKNOWN).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.rpc import status_pb2  # type: ignore[import-untyped]

from pylotto.core import dapr_errors
from pylotto.core.errors import APP_STATUS_TRAILER, PylottoError, grpc_code
from pylotto.facades.interceptors.chain import StreamBehavior, UnaryBehavior, Wrapper, rewrap

log = logging.getLogger("pylotto.grpc")

DAPR_SERVICE_PREFIX = "/dapr.proto.runtime.v1.Dapr/"
SIDECAR_SERVICE_PREFIX = "/pylotto.v1.SidecarInvoke/"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_CODES = {code.value[0]: code for code in grpc.StatusCode}

Abort = Callable[[grpc.aio.ServicerContext[Any, Any], PylottoError], Awaitable[None]]


class ErrorMapping(Wrapper):
    """Every method's PylottoError → ``context.abort(status, message)`` (with Dapr's details
    on Dapr's service)."""

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        abort = (_abort_dapr if method.startswith(DAPR_SERVICE_PREFIX) else
                 _abort_to_sidecar if method.startswith(SIDECAR_SERVICE_PREFIX) else _abort)
        return rewrap(handler, lambda b: _unary(b, abort), lambda b: _stream(b, abort))


async def _abort(context: grpc.aio.ServicerContext[Any, Any], err: PylottoError) -> None:
    log.debug("%s: %s", type(err).__name__, err.message)
    await context.abort(grpc_code(err), err.message)


async def _abort_to_sidecar(context: grpc.aio.ServicerContext[Any, Any],
                            err: PylottoError) -> None:
    """To a calling sidecar: an app's own status is marked as such, with the whole status."""
    log.debug("%s: %s", type(err).__name__, err.message)
    trailer: tuple[tuple[str, str | bytes], ...] = ()
    if err.app_status is not None:
        trailer = ((STATUS_DETAILS_KEY, err.app_status.status), (APP_STATUS_TRAILER, "1"))
    await context.abort(grpc_code(err), err.message, trailing_metadata=trailer)


async def _abort_dapr(context: grpc.aio.ServicerContext[Any, Any], err: PylottoError) -> None:
    log.debug("%s: %s", type(err).__name__, err.message)
    if err.app_status is not None:  # an app's own status: passed on whole, as daprd's
        status = status_pb2.Status()  # ErrorFromInternalStatus (code, message, details)
        status.ParseFromString(err.app_status.status)
        details = ((STATUS_DETAILS_KEY, err.app_status.status),) if status.details else ()
        await context.abort(_CODES.get(status.code, grpc.StatusCode.UNKNOWN), status.message,
                            trailing_metadata=details)
    rendered = dapr_errors.render(err, "grpc")
    trailer: tuple[tuple[str, str | bytes], ...] = ()
    if rendered.details:
        trailer = ((STATUS_DETAILS_KEY, rendered.status_proto().SerializeToString()),)
    await context.abort(rendered.grpc_code, rendered.message, trailing_metadata=trailer)


def _unary(behavior: UnaryBehavior, abort: Abort) -> UnaryBehavior:
    async def mapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(request, context)
        except PylottoError as err:
            await abort(context, err)

    return mapped


def _stream(behavior: StreamBehavior, abort: Abort) -> StreamBehavior:
    async def mapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async for item in behavior(request, context):
                yield item
        except PylottoError as err:
            await abort(context, err)

    return mapped
