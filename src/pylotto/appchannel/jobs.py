"""A triggered job, handed to the app as daprd does (``pkg/channel/{http,grpc}``).

HTTP app: ``POST /job/<name>`` with ``Content-Type: application/json``; the body is the JSON
of the payload when it is a ``google.protobuf.Value`` (what the HTTP Jobs API stores), its
bytes (trimmed) otherwise. gRPC app: ``AppCallback.OnJobEvent`` (``AppCallbackAlpha.
OnJobEventAlpha1`` for an app that has only that) with the name, the payload, method
``job/<name>``, the payload's type URL as content type and verb POST.

The app's answer: 2xx / OK delivered the trigger; 404 / NOT_FOUND counts as delivered too
(daprd does not retry it; logged); anything else, or no answer, failed it (the job's failure
policy decides what next).
"""

from __future__ import annotations

import abc
import contextvars
import logging
from collections.abc import Mapping

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import appcallback_pb2, appcallback_pb2_grpc
from google.protobuf import any_pb2, json_format, struct_pb2

from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel
from pylotto.appchannel.http import AppRequest, HttpAppChannel
from pylotto.core.errors import PylottoError
from pylotto.observability.tracing import grpc_trace_metadata

log = logging.getLogger("pylotto.appchannel.jobs")

VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value"
TRIGGER_TIMEOUT_SECONDS = 10.0
TRIGGER_CARRIER: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "pylotto_job_trigger_carrier", default=None)
"""The W3C trace context of the trigger being handed over (set by the scheduler around
:meth:`JobChannel.trigger`; None: none), which the app channels send on to the app."""


class JobChannel(abc.ABC):
    """Where triggered jobs go."""

    description: str = "app"

    @abc.abstractmethod
    async def trigger(self, name: str, type_url: str, value: bytes) -> bool:
        """Hand the trigger of job ``name`` to the app; True when it is delivered (the
        trigger's trace context, to send on: :data:`TRIGGER_CARRIER`)."""


def http_body(type_url: str, value: bytes) -> bytes:
    """The body daprd POSTs for a payload."""
    if type_url == VALUE_TYPE_URL:
        parsed = struct_pb2.Value()
        parsed.ParseFromString(value)
        if parsed.WhichOneof("kind") is None:
            return b""
        return json_format.MessageToJson(parsed, indent=None).encode()
    return value.strip()


class HttpJobChannel(JobChannel):
    def __init__(self, http: HttpAppChannel, timeout: float = TRIGGER_TIMEOUT_SECONDS) -> None:
        self.http, self.timeout = http, timeout
        self.description = f"app at {http.base_url}"

    async def trigger(self, name: str, type_url: str, value: bytes) -> bool:
        path = "job/" + name.lstrip("/")
        headers = [("Content-Type", "application/json"), *(TRIGGER_CARRIER.get() or {}).items()]
        try:
            response = await self.http.send(AppRequest(
                "POST", path, headers=headers,
                body=http_body(type_url, value), timeout=self.timeout))
        except PylottoError as err:
            log.warning("job %s: %s: %s", name, self.description, err.message)
            return False
        if response.status == 404:
            log.warning("job %s: POST /%s answered 404: not retried", name, path)
            return True
        if not 200 <= response.status < 300:
            log.warning("job %s: POST /%s answered %d", name, path, response.status)
            return False
        return True


class GrpcJobChannel(JobChannel):
    def __init__(self, app: DaprGrpcAppChannel, timeout: float = TRIGGER_TIMEOUT_SECONDS) -> None:
        self.app, self.timeout = app, timeout
        self.description = app.description

    async def trigger(self, name: str, type_url: str, value: bytes) -> bool:
        metadata = (*grpc_trace_metadata(TRIGGER_CARRIER.get() or {}),
                    *(self.app.metadata or ()))
        request = appcallback_pb2.JobEventRequest(
            name=name, data=any_pb2.Any(type_url=type_url, value=value), method="job/" + name,
            content_type=type_url,
            http_extension=common_pb2.HTTPExtension(verb=common_pb2.HTTPExtension.POST))
        try:
            async with self.app.gate.call():
                try:
                    await self.app.stub().OnJobEvent(request, timeout=self.timeout,
                                                     metadata=metadata or None)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    self.app.stub()  # the channel exists now
                    alpha = appcallback_pb2_grpc.AppCallbackAlphaStub(  # type: ignore[no-untyped-call]
                        self.app._channel)
                    await alpha.OnJobEventAlpha1(request, timeout=self.timeout,
                                                 metadata=metadata or None)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                log.warning("job %s: the app answered NOT_FOUND: not retried", name)
                return True
            log.warning("job %s: %s answered %s: %s", name, self.description, exc.code().name,
                        exc.details())
            return False
        except PylottoError as err:
            log.warning("job %s: %s: %s", name, self.description, err.message)
            return False
        return True
