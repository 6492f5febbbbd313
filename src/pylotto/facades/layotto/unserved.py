"""Layotto's extension services pylotto does not serve (its SMS and phone-call APIs, whose only
Layotto implementations call cloud providers): every call to one is answered UNIMPLEMENTED
naming the service, rather than gRPC's anonymous "Method not found!". Their config sections
are refused the same way (config/layotto.py, ``UNSERVED_SECTIONS``: the one description)."""

from __future__ import annotations

from typing import Any

import grpc

from pylotto.config.layotto import UNSERVED_SECTIONS

SERVICES = {
    "spec.proto.extension.v1.sms.SmsService": "sms",
    "spec.proto.extension.v1.phone.PhoneCallService": "phone",
}
"""Full gRPC service name → its Layotto config section."""


def refusal(service: str) -> str:
    section = SERVICES[service]
    return (f"{service} ({UNSERVED_SECTIONS[section]}) is not served by pylotto: it has no "
            f"{section} component (Layotto's reach cloud providers only); see docs/email.md")


class UnservedHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers every method of :data:`SERVICES` with UNIMPLEMENTED and :func:`refusal`."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        service = handler_call_details.method.lstrip("/").partition("/")[0]
        if service not in SERVICES:
            return None
        text = refusal(service)

        async def refuse(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, text)

        return grpc.unary_unary_rpc_method_handler(refuse)
