"""OpenTelemetry semantic-convention attributes of pylotto's spans — one place for the names
(https://opentelemetry.io/docs/specs/semconv/: rpc, http, db, messaging), so a tracing back
end groups, filters and labels pylotto's spans as it does any other service's.

- API calls (server spans): gRPC ``rpc.system``, ``rpc.service``, ``rpc.method`` and, at the
  end, ``rpc.grpc.status_code``; HTTP ``http.request.method``, ``url.path``, ``http.route``
  and, at the end, ``http.response.status_code``.
- Component calls (client spans): ``db.system`` (the component's type, e.g. ``state.redis``),
  ``db.namespace`` (the component's name), ``db.operation.name`` (``get``, ``set``...); a
  publish is a ``messaging.*`` producer call instead.
- Deliveries (consumer spans): ``messaging.system`` ``messaging.destination.name`` (the
  topic), ``messaging.operation.type`` ``process``, ``messaging.message.id``.
- Calls to another app (client spans): ``rpc.system`` ``dapr``, ``peer.service`` (its app id),
  ``rpc.method``.
"""

from __future__ import annotations

from typing import Any

import grpc

Attributes = dict[str, str | int]


def grpc_server(full_method: str) -> Attributes:
    service, _, method = full_method.lstrip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def http_server(method: str, path: str, route: str) -> Attributes:
    return {"http.request.method": method, "url.path": path, "http.route": route}


def component_call(capability: str, type_name: str, name: str, operation: str) -> Attributes:
    if capability == "pubsub":
        return {"messaging.system": type_name or "pubsub", "messaging.operation.type": "publish",
                "messaging.client.id": name}
    out: Attributes = {"db.system": type_name or capability, "db.namespace": name}
    if operation:
        out["db.operation.name"] = operation
    return out


def delivery(pubsub: str, topic: str, message_id: str = "") -> Attributes:
    out: Attributes = {"messaging.system": "pubsub", "messaging.destination.name": topic,
                       "messaging.operation.type": "process", "messaging.consumer.group.name":
                       pubsub}
    if message_id:
        out["messaging.message.id"] = message_id
    return out


def invocation(app_id: str, method: str) -> Attributes:
    return {"rpc.system": "dapr", "peer.service": app_id, "rpc.method": method}


def grpc_status(span: Any, code_name: str) -> None:
    """Set ``rpc.grpc.status_code`` on ``span`` (None: not recorded) from a status name."""
    if span is not None:
        code = getattr(grpc.StatusCode, code_name, grpc.StatusCode.UNKNOWN)
        span.set_attribute("rpc.grpc.status_code", code.value[0])


def http_status(span: Any, status: int) -> None:
    if span is not None:
        span.set_attribute("http.response.status_code", status)
