"""Layotto's ``spec.proto.extension.v1.delay_queue.DelayQueue`` on the Layotto gRPC port."""

from __future__ import annotations

from typing import Any

from pylotto.capabilities.pubsub import PublishRequest
from pylotto.capabilities.services import CapabilityServices
from pylotto.facades.common.pubsub import header
from pylotto.proto.layotto import delay_queue_pb2, delay_queue_pb2_grpc

SERVICE = delay_queue_pb2.DESCRIPTOR.services_by_name["DelayQueue"].full_name


class DelayQueueServicer(delay_queue_pb2_grpc.DelayQueueServicer):
    def __init__(self, services: CapabilityServices) -> None:
        self.services = services

    async def PublishDelayMessage(
        self, request: delay_queue_pb2.DelayMessageRequest, context: Any
    ) -> delay_queue_pb2.DelayMessageResponse:
        message_id = await self.services.delay_queue.publish_later(PublishRequest(
            pubsub_name=request.component_name, topic=request.topic, data=request.data,
            data_content_type=request.data_content_type, metadata=dict(request.metadata),
            trace_parent=header(context, "traceparent"),
            trace_state=header(context, "tracestate"),
        ), request.delay_in_seconds)
        return delay_queue_pb2.DelayMessageResponse(message_id=message_id)
