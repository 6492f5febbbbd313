"""Layotto ``AppCallback`` over gRPC: the sidecar is the client of the app's callback server
(``app.grpc_callback_host:grpc_callback_port``).

gRPC failures map to pylotto errors: UNIMPLEMENTED → Unsupported (the event is dropped),
UNAVAILABLE → Unavailable, DEADLINE_EXCEEDED → DeadlineExceeded, anything else → Internal.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf import empty_pb2

from pylotto.appchannel.base import AppChannel, DeliveryStatus, TopicEvent, TopicSubscription
from pylotto.errors import DeadlineExceeded, Internal, PylottoError, Unavailable, Unsupported
from pylotto.proto.layotto import appcallback_pb2, appcallback_pb2_grpc
from pylotto.security import TOKEN_HEADER

log = logging.getLogger("pylotto.appchannel.layotto_grpc")

DELIVERY_TIMEOUT_SECONDS = 60.0
LIST_TIMEOUT_SECONDS = 5.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # The app may come up after the sidecar: keep reconnecting briskly.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


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


class LayottoGrpcAppChannel(AppChannel):
    """One gRPC channel to the app's ``spec.proto.runtime.v1.AppCallback`` server."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        delivery_timeout: float = DELIVERY_TIMEOUT_SECONDS,
        list_timeout: float = LIST_TIMEOUT_SECONDS,
        api_token: str = "",
    ) -> None:
        self.address = f"{host}:{port}"
        self.metadata = ((TOKEN_HEADER, api_token),) if api_token else None
        self.description = f"app callback at {self.address}"
        self.delivery_timeout = delivery_timeout
        self.list_timeout = list_timeout
        self._channel: Any = None
        self._stub: Any = None

    def _callback(self) -> Any:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
            self._stub = appcallback_pb2_grpc.AppCallbackStub(self._channel)
        return self._stub

    def _error(self, exc: grpc.aio.AioRpcError, method: str) -> PylottoError:
        code, details = exc.code(), exc.details() or ""
        where = f"{self.description}: {method}"
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return Unsupported(f"{where} is not implemented by the app")
        if code == grpc.StatusCode.UNAVAILABLE:
            return Unavailable(f"{where}: app unavailable: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(f"{where}: no answer in time")
        return Internal(f"{where}: app answered {code.name}: {details}")

    async def list_subscriptions(self) -> list[TopicSubscription]:
        try:
            response = await self._callback().ListTopicSubscriptions(
                empty_pb2.Empty(), timeout=self.list_timeout, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "ListTopicSubscriptions") from None
        return [
            TopicSubscription(s.pubsub_name, s.topic, dict(s.metadata))
            for s in response.subscriptions
        ]

    async def deliver(self, event: TopicEvent) -> DeliveryStatus:
        try:
            response = await self._callback().OnTopicEvent(
                topic_event_request(event), timeout=self.delivery_timeout, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "OnTopicEvent") from None
        status = DeliveryStatus.from_code(response.status)
        if status is None:
            raise Internal(
                f"{self.description}: OnTopicEvent answered unknown status {response.status}"
            )
        return status

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None
