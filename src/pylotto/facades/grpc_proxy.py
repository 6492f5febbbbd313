"""gRPC proxying (Dapr's way of invoking gRPC apps): an app calls its own sidecar with any gRPC
method and the metadata ``dapr-app-id: <target>``; the call reaches the target app's gRPC server
unchanged — through the target's sidecar when it is another app, directly when it is this
sidecar's own app (``app.port`` with ``app.protocol: grpc``).

Only methods no service of the sidecar implements are proxied, and only unary ones (streaming
methods answer UNIMPLEMENTED). Requests and responses travel as bytes, never decoded; metadata
goes along (``dapr-caller-app-id`` added), the target's status and details come back as they
are.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from pylotto.core.errors import NotConfigured, Unsupported
from pylotto.process.runtime import Runtime

log = logging.getLogger("pylotto.grpc.proxy")

APP_ID_KEY = "dapr-app-id"
CALLER_KEY = "dapr-caller-app-id"
_NOT_FORWARDED = frozenset({"content-type", "te", "user-agent", "grpc-timeout",
                            "grpc-accept-encoding", "grpc-encoding"})


def _target(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():
        if key == APP_ID_KEY and isinstance(value, str):
            return value
    return ""


class ProxyHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Catches the methods no registered service handles and carries ``dapr-app-id`` calls."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._app_channel: grpc.aio.Channel | None = None

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        if not _target(handler_call_details):
            return None
        method = handler_call_details.method

        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await self._forward(method, request, context)

        return grpc.unary_unary_rpc_method_handler(forward)

    def _app(self) -> grpc.aio.Channel:
        app = self.runtime.config.app
        if not app.port or app.protocol != "grpc":
            raise NotConfigured("gRPC proxying to this sidecar's app needs app.port with "
                                "app.protocol: grpc")
        if self._app_channel is None:
            self._app_channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.port}")
        return self._app_channel

    async def _forward(self, method: str, request: bytes,
                       context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        metadata = context.invocation_metadata() or ()
        target = next((v for k, v in metadata if k == APP_ID_KEY), "")
        own = self.runtime.config.app.id
        caller = next((v for k, v in metadata if k == CALLER_KEY), own)
        forwarded = [(k, v) for k, v in metadata
                     if k not in _NOT_FORWARDED and k != CALLER_KEY and not k.startswith(":")]
        forwarded.append((CALLER_KEY, caller))
        timeout = context.time_remaining()
        try:
            if target == own:
                return await self._app().unary_unary(method)(
                    request, metadata=forwarded, timeout=timeout)
            sidecars = self.runtime.invoke.sidecars
            if sidecars is None:
                raise Unsupported(f"cannot proxy to app {target!r}: no name resolution "
                                  "(name_resolution in the configuration)")
            return await sidecars.proxy(target, method, request, forwarded,
                                        within=timeout if timeout is not None else 60.0)
        except grpc.aio.AioRpcError as exc:  # the target's own answer, passed on as it is
            await context.abort(exc.code(), exc.details() or "")

    async def close(self) -> None:
        if self._app_channel is not None:
            await self._app_channel.close()
