"""``pylotto.v1.SidecarInvoke``: the target side of invocation between sidecars."""

from __future__ import annotations

from typing import Any

from pylotto.appchannel.sidecars import AppCall
from pylotto.capabilities.invoke import InvokeCapability, served_timeout
from pylotto.proto.extensions import invoke_pb2, invoke_pb2_grpc
from pylotto.security.certs import app_id_of

SERVICE = invoke_pb2.DESCRIPTOR.services_by_name["SidecarInvoke"].full_name


def peer_app_id(context: Any) -> str | None:
    """The app id in the calling sidecar's client certificate (mTLS), None without one."""
    sans = (context.auth_context() or {}).get("x509_subject_alternative_name") or []
    return app_id_of([s.decode() if isinstance(s, bytes) else str(s) for s in sans])


class SidecarInvokeServicer(invoke_pb2_grpc.SidecarInvokeServicer):
    def __init__(self, invoke: InvokeCapability) -> None:
        self.invoke = invoke

    async def InvokeApp(self, request: invoke_pb2.AppCall, context: Any) -> invoke_pb2.AppAnswer:
        result = await self.invoke.serve(AppCall(
            caller_app_id=request.caller_app_id, target_app_id=request.target_app_id,
            method=request.method, verb=request.verb, querystring=request.querystring,
            headers=[(h.key, h.value) for h in request.headers], data=request.data,
            content_type=request.content_type,
            timeout=served_timeout(request.timeout_ms, context.time_remaining()),
            data_type_url=request.data_type_url),
            certified_app_id=peer_app_id(context))
        return invoke_pb2.AppAnswer(
            status=result.status, data=result.data, content_type=result.content_type,
            data_type_url=result.data_type_url,
            headers=[invoke_pb2.Header(key=k, value=v) for k, v in result.headers])
