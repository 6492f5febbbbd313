"""Events of input bindings, handed to the app as daprd does (``pkg/runtime/processor/binding``).

HTTP app: does the app listen? ``OPTIONS /<route>`` answered 2xx or 405 means yes (any other
status: no; no answer: the app is not up yet). An event is ``POST /<route>`` (the binding's
``route`` metadata, else its name) with ``Content-Type: application/json``, the event's data
as the body and its metadata as headers; a 2xx answer acks it, anything else fails it.

gRPC app: ``ListInputBindings`` (asked once, the list kept) says which bindings the app
listens to; an event is ``OnBindingEvent`` with the binding's name, data and metadata; an OK
answer acks it. The answer may name output bindings (``to``) to send its ``data`` to, one
after the other or (``concurrency: PARALLEL``) all at once — the capability does that.

Layotto's AppCallback has no input-binding callback (Layotto at f9681450 does not deliver
input bindings: its ``initInputBinding`` is a TODO), so there is no Layotto channel here.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import grpc
from dapr.proto.runtime.v1 import appcallback_pb2
from google.protobuf import empty_pb2

from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel
from pylotto.appchannel.http import AppRequest, HttpAppChannel
from pylotto.core.errors import Internal

PROBE_TIMEOUT_SECONDS = 3.0
"""daprd's ``--app-binding-options-timeout`` default."""
DELIVERY_TIMEOUT_SECONDS = 60.0

_NOT_HEADERS = frozenset({"content-type", "content-length", "connection", "keep-alive",
                          "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
                          "host"})


@dataclass(frozen=True, slots=True)
class BindingAnswer:
    """The app's answer to an event."""

    data: bytes = b""
    to: tuple[str, ...] = ()
    """Output bindings to send ``data`` to (gRPC apps only, as in daprd)."""
    parallel: bool = False


class BindingChannel(abc.ABC):
    """Where the events of input bindings go."""

    description: str = "app"

    @abc.abstractmethod
    async def listens(self, name: str, route: str) -> bool:
        """True when the app takes the events of binding ``name``; raises Unavailable /
        DeadlineExceeded while the app cannot be reached."""

    @abc.abstractmethod
    async def deliver(self, name: str, route: str, data: bytes,
                      metadata: dict[str, str]) -> BindingAnswer:
        """Hand one event to the app; raises a pylotto error when the app failed it."""


class HttpBindingChannel(BindingChannel):
    def __init__(self, http: HttpAppChannel, timeout: float = DELIVERY_TIMEOUT_SECONDS) -> None:
        self.http, self.timeout = http, timeout
        self.description = f"app at {http.base_url}"

    async def listens(self, name: str, route: str) -> bool:
        response = await self.http.send(AppRequest(
            "OPTIONS", route or name, headers=[("Content-Type", "application/json")],
            timeout=PROBE_TIMEOUT_SECONDS))
        return 200 <= response.status < 300 or response.status == 405

    async def deliver(self, name: str, route: str, data: bytes,
                      metadata: dict[str, str]) -> BindingAnswer:
        headers = [("Content-Type", "application/json"),
                   *((k, v) for k, v in metadata.items()
                     if k.lower() not in _NOT_HEADERS and not k.lower().endswith("-bin"))]
        path = route or name
        response = await self.http.send(AppRequest("POST", path, headers=headers, body=data,
                                                    timeout=self.timeout))
        if not 200 <= response.status < 300:
            excerpt = response.body[:512].decode("utf-8", errors="replace")
            raise Internal(f"fails to send binding event to http app channel, status code: "
                           f"{response.status} body: {excerpt}")
        return BindingAnswer(response.body)


class GrpcBindingChannel(BindingChannel):
    def __init__(self, app: DaprGrpcAppChannel, timeout: float = DELIVERY_TIMEOUT_SECONDS) -> None:
        self.app, self.timeout = app, timeout
        self.description = app.description
        self._listed: frozenset[str] | None = None

    async def listens(self, name: str, route: str) -> bool:
        if self._listed is None:
            try:
                response = await self.app.stub().ListInputBindings(
                    empty_pb2.Empty(), timeout=PROBE_TIMEOUT_SECONDS, metadata=self.app.metadata)
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise self.app.error(exc, "ListInputBindings") from None
                self._listed = frozenset()  # daprd: an error is an empty list
            else:
                self._listed = frozenset(response.bindings)
        return name in self._listed

    async def deliver(self, name: str, route: str, data: bytes,
                      metadata: dict[str, str]) -> BindingAnswer:
        request = appcallback_pb2.BindingEventRequest(name=name, data=data, metadata=metadata)
        try:
            async with self.app.gate.call():
                response = await self.app.stub().OnBindingEvent(
                    request, timeout=self.timeout, metadata=self.app.metadata)
        except grpc.aio.AioRpcError as exc:
            raise Internal(f"error invoking app: {self.description}: OnBindingEvent answered "
                           f"{exc.code().name}: {exc.details() or ''}") from None
        return BindingAnswer(
            response.data, tuple(response.to),
            response.concurrency == appcallback_pb2.BindingEventResponse.PARALLEL)
