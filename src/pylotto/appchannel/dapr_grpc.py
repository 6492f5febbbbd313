"""Dapr's ``AppCallback`` over gRPC (an app served with ``--app-protocol grpc``): invocation
through ``OnInvoke``, subscriptions through ``ListTopicSubscriptions`` (with routing rules and
dead-letter topics), events through ``OnTopicEvent``. Errors: see :mod:`.grpc_channel`; an
unknown status in a response means a retry, as in Dapr. An error status the app answers
``OnInvoke`` with reaches the caller with its code and message, as in Dapr.

:func:`dapr_topic_event` is also the ``event_message`` of Dapr's streaming subscription.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import appcallback_pb2, appcallback_pb2_grpc
from google.protobuf import any_pb2, empty_pb2, struct_pb2
from google.protobuf.message import DecodeError
from google.rpc import status_pb2  # type: ignore[import-untyped]

from pylotto.appchannel import cloudevents, message_metadata
from pylotto.appchannel.base import (
    BulkEntry,
    BulkSubscribe,
    DeliveryStatus,
    RouteRule,
    TopicEvent,
    TopicSubscription,
)
from pylotto.appchannel.grpc_channel import GrpcAppChannel
from pylotto.core.errors import (
    AppStatus,
    Internal,
    InvalidArgument,
    PylottoError,
    from_grpc_code,
)
from pylotto.observability.tracing import TRACEPARENT, TRACESTATE, grpc_trace_metadata

_ATTRIBUTES = frozenset({
    cloudevents.ID, cloudevents.SOURCE, cloudevents.TYPE, cloudevents.SPECVERSION,
    cloudevents.DATACONTENTTYPE, cloudevents.DATA, cloudevents.DATA_BASE64,
    cloudevents.TOPIC, cloudevents.PUBSUBNAME,
})
"""CloudEvent attributes with a field of their own in TopicEventRequest."""


def dapr_topic_event(event: TopicEvent, path: str = "") -> appcallback_pb2.TopicEventRequest:
    """Dapr's wire form of ``event``; every other CloudEvent attribute goes in ``extensions``."""
    extensions = struct_pb2.Struct()
    extra = {k: v for k, v in event.cloud_event.items() if k not in _ATTRIBUTES}
    if extra:
        extensions.update(extra)
    return appcallback_pb2.TopicEventRequest(
        id=event.id,
        source=event.source,
        type=event.type,
        spec_version=event.spec_version,
        data_content_type=event.data_content_type,
        data=event.data,
        topic=event.topic,
        pubsub_name=event.pubsub_name,
        path=path,
        extensions=extensions,
    )


@dataclass(frozen=True, slots=True)
class GrpcAppAnswer:
    """The app's ``InvokeResponse`` and the headers (initial metadata) it sent with it."""

    data: bytes
    content_type: str
    type_url: str = ""
    """The ``type_url`` of the app's ``Any``: "" for raw bytes, else the protobuf type."""
    headers: list[tuple[str, str]] = field(default_factory=list)


class DaprGrpcAppChannel(GrpcAppChannel):
    """One gRPC channel to the app's ``dapr.proto.runtime.v1.AppCallback`` server."""

    supports_bulk = True

    def make_stub(self, channel: grpc.aio.Channel) -> Any:
        return appcallback_pb2_grpc.AppCallbackStub(channel)  # type: ignore[no-untyped-call]

    async def list_subscriptions(self) -> list[TopicSubscription]:
        try:
            response = await self.stub().ListTopicSubscriptions(
                empty_pb2.Empty(), timeout=self.list_timeout, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise self.error(exc, "ListTopicSubscriptions") from None
        return [
            TopicSubscription(
                s.pubsub_name, s.topic, dict(s.metadata),
                rules=tuple(RouteRule(r.match, r.path) for r in s.routes.rules),
                default_path=s.routes.default, dead_letter_topic=s.dead_letter_topic,
                bulk=BulkSubscribe.from_spec({
                    "enabled": s.bulk_subscribe.enabled,
                    "maxMessagesCount": s.bulk_subscribe.max_messages_count,
                    "maxAwaitDurationMs": s.bulk_subscribe.max_await_duration_ms}),
            )
            for s in response.subscriptions
        ]

    async def deliver(self, event: TopicEvent) -> DeliveryStatus:
        """``OnTopicEvent``, with the event's trace context as gRPC metadata (``traceparent``,
        ``tracestate``, ``grpc-trace-bin``), as Dapr sends the delivery span's, and the
        message's metadata (:mod:`pylotto.appchannel.message_metadata`)."""
        carrier = {k: str(event.cloud_event[k]) for k in (TRACEPARENT, TRACESTATE)
                   if event.cloud_event.get(k)}
        sent = (*grpc_trace_metadata(carrier), *message_metadata.grpc_metadata(event),
                *(self.metadata or ()))
        try:
            response = await self.stub().OnTopicEvent(
                dapr_topic_event(event, event.path), timeout=self.delivery_timeout,
                metadata=sent or None)
        except grpc.aio.AioRpcError as exc:
            raise self.error(exc, "OnTopicEvent") from None
        status = DeliveryStatus.from_code(response.status)
        if status is None:
            raise Internal(
                f"{self.description}: OnTopicEvent answered unknown status {response.status}")
        return status

    async def deliver_bulk(self, entries: Sequence[BulkEntry], path: str, *,
                           raw: bool = False) -> dict[str, DeliveryStatus]:
        """``OnBulkTopicEvent`` (``OnBulkTopicEventAlpha1`` for an app that has only that);
        an app that implements neither drops the entries, as Dapr."""
        first = entries[0].event
        request = appcallback_pb2.TopicEventBulkRequest(
            id=str(uuid.uuid4()), topic=first.topic, pubsub_name=first.pubsub_name,
            type=BULK_EVENT_TYPE, path=path, metadata={"pubsubName": first.pubsub_name},
            entries=[_bulk_entry(entry, raw) for entry in entries])
        try:
            try:
                response = await self.stub().OnBulkTopicEvent(
                    request, timeout=self.delivery_timeout, metadata=self.metadata)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                alpha = appcallback_pb2_grpc.AppCallbackAlphaStub(  # type: ignore[no-untyped-call]
                    self._channel)
                response = await alpha.OnBulkTopicEventAlpha1(
                    request, timeout=self.delivery_timeout, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return {entry.entry_id: DeliveryStatus.DROP for entry in entries}
            raise self.error(exc, "OnBulkTopicEvent") from None
        verdicts = {}
        for answer in response.statuses:
            status = DeliveryStatus.from_code(answer.status)
            verdicts[answer.entry_id] = DeliveryStatus.RETRY if status is None else status
        return verdicts

    def invoke_error(self, exc: grpc.aio.AioRpcError, method: str) -> PylottoError:
        """The app's own error status, passed on as Dapr passes it (its code and message);
        an app that cannot be reached (UNAVAILABLE, DEADLINE_EXCEEDED) as :meth:`error`."""
        code = exc.code()
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return self.error(exc, f"OnInvoke {method}")
        err = from_grpc_code(code, exc.details() or f"{self.description}: OnInvoke {method} "
                             f"answered {code.name}")
        err.app_status = app_status_of(exc)
        return err

    async def invoke(self, method: str, data: bytes, content_type: str, verb: str,
                     querystring: str, within: float, *, type_url: str = "",
                     metadata: Sequence[tuple[str, str | bytes]] = ()) -> GrpcAppAnswer:
        """Call ``OnInvoke`` with ``data`` in an ``Any`` of ``type_url`` (the caller's, kept
        as Dapr keeps it) and ``metadata`` (the forwarded headers and trace context)."""
        try:
            verb_number = common_pb2.HTTPExtension.Verb.Value(verb.upper() or "NONE")
        except ValueError:
            raise InvalidArgument(f"HTTP verb {verb!r} is not one Dapr carries") from None
        request = common_pb2.InvokeRequest(
            method=method, data=any_pb2.Any(type_url=type_url, value=data),
            content_type=content_type,
            http_extension=common_pb2.HTTPExtension(verb=verb_number, querystring=querystring))
        sent = (*metadata, *(self.metadata or ()))
        try:
            async with self.gate.call():
                call = self.stub().OnInvoke(request, timeout=within, metadata=sent or None)
                response = await call
                initial = await call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise self.invoke_error(exc, method) from None
        headers = [(k, v) for k, v in initial or () if isinstance(v, str)]
        return GrpcAppAnswer(response.data.value, response.content_type,
                             response.data.type_url, headers)


BULK_EVENT_TYPE = "com.dapr.event.sent.bulk"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def app_status_of(exc: grpc.aio.AioRpcError) -> AppStatus:
    """The app's status as ``google.rpc.Status``: its code and message, and the details of
    its ``grpc-status-details-bin`` trailer when it sent one (as grpc-go's
    ``status.Convert`` reads it in daprd)."""
    status = status_pb2.Status(code=exc.code().value[0], message=exc.details() or "")
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            sent = status_pb2.Status()
            try:
                sent.ParseFromString(value)
            except DecodeError:
                break
            status.details.extend(sent.details)
            break
    return AppStatus(status.SerializeToString())


def _bulk_entry(entry: BulkEntry, raw: bool) -> appcallback_pb2.TopicEventBulkRequestEntry:
    """One entry as Dapr sends it: the CloudEvent's fields, or a raw payload's bytes."""
    event = entry.event
    if raw:
        return appcallback_pb2.TopicEventBulkRequestEntry(
            entry_id=entry.entry_id, bytes=event.data, metadata=event.metadata,
            content_type=event.data_content_type or cloudevents.OCTET_STREAM)
    single = dapr_topic_event(event)
    return appcallback_pb2.TopicEventBulkRequestEntry(
        entry_id=entry.entry_id, metadata=event.metadata,
        content_type=cloudevents.CLOUDEVENT_CONTENT_TYPE,
        cloud_event=appcallback_pb2.TopicEventCERequest(
            id=single.id, source=single.source, type=single.type,
            spec_version=single.spec_version, data_content_type=single.data_content_type,
            data=single.data, extensions=single.extensions))
