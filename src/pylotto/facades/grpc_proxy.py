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

from pylotto.capabilities.invoke import InvokeCapability
from pylotto.facades.sidecar_invoke import peer_app_id

log = logging.getLogger("pylotto.grpc.proxy")

APP_ID_KEY = "dapr-app-id"


def _target(details: grpc.HandlerCallDetails) -> str:
    for key, value in details.invocation_metadata or ():
        if key == APP_ID_KEY and isinstance(value, str):
            return value
    return ""


class ProxyHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Catches the methods no registered service handles and carries ``dapr-app-id`` calls
    (where the call goes, with which metadata and timeout: :meth:`InvokeCapability.proxy`)."""

    def __init__(self, invoke: InvokeCapability, *, from_sidecars: bool = False) -> None:
        """``from_sidecars``: the handler of the sidecars' mTLS port (every call comes from
        another app's sidecar; its certificate names the caller)."""
        self.invoke = invoke
        self.from_sidecars = from_sidecars

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        if not _target(handler_call_details):
            return None
        method = handler_call_details.method

        async def forward(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await self._forward(method, request, context)

        return grpc.unary_unary_rpc_method_handler(forward)

    async def _forward(self, method: str, request: bytes,
                       context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        metadata = context.invocation_metadata() or ()
        target = next((v for k, v in metadata if k == APP_ID_KEY), "")
        try:
            return await self.invoke.proxy(
                target, method, request, metadata, context.time_remaining(),
                from_sidecar=self.from_sidecars,
                certified_app_id=peer_app_id(context) if self.from_sidecars else None)
        except grpc.aio.AioRpcError as exc:  # the target's own answer, passed on as it is
            await context.abort(exc.code(), exc.details() or "")
