"""Layotto ``AppCallback`` over gRPC: the sidecar is the client of the app's callback server
(``app.grpc_callback_host:grpc_callback_port``). Errors: see :mod:`.grpc_channel`."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2

from pylotto.appchannel.base import DeliveryStatus, TopicEvent, TopicSubscription
from pylotto.appchannel.grpc_channel import GrpcAppChannel
from pylotto.core.errors import Internal
from pylotto.proto.layotto import appcallback_pb2, appcallback_pb2_grpc


def topic_event_request(event: TopicEvent) -> appcallback_pb2.TopicEventRequest:
    """The Layotto wire form of ``event`` (also the ``event_message`` of a stream)."""
    return appcallback_pb2.TopicEventRequest(
        id=event.id,
        source=event.source,
        type=event.type,
        spec_version=event.spec_version,
        data_content_type=event.data_content_type,
        data=event.data,
        topic=event.topic,
        pubsub_name=event.pubsub_name,
        metadata=event.metadata,
    )


class LayottoGrpcAppChannel(GrpcAppChannel):
    """One gRPC channel to the app's ``spec.proto.runtime.v1.AppCallback`` server."""

    def make_stub(self, channel: grpc.aio.Channel) -> Any:
        return appcallback_pb2_grpc.AppCallbackStub(channel)

    async def list_subscriptions(self) -> list[TopicSubscription]:
        try:
            response = await self.stub().ListTopicSubscriptions(
                empty_pb2.Empty(), timeout=self.list_timeout, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise self.error(exc, "ListTopicSubscriptions") from None
        return [
            TopicSubscription(s.pubsub_name, s.topic, dict(s.metadata))
            for s in response.subscriptions
        ]

    async def deliver(self, event: TopicEvent) -> DeliveryStatus:
        try:
            response = await self.stub().OnTopicEvent(
                topic_event_request(event), timeout=self.delivery_timeout, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise self.error(exc, "OnTopicEvent") from None
        status = DeliveryStatus.from_code(response.status)
        if status is None:
            raise Internal(
                f"{self.description}: OnTopicEvent answered unknown status {response.status}"
            )
        return status
