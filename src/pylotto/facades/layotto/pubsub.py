"""PublishEvent, SubscribeTopicEvents (bidi: events out, event_processed verdicts in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pylotto.appchannel.layotto_grpc import topic_event_request
from pylotto.facades.common.pubsub import PublishRpcs
from pylotto.proto.layotto import runtime_pb2


class PubSubRpcs(PublishRpcs):
    async def SubscribeTopicEvents(
        self,
        request_iterator: AsyncIterator[runtime_pb2.SubscribeTopicEventsRequest],
        context: Any,
    ) -> AsyncIterator[runtime_pb2.SubscribeTopicEventsResponse]:
        async for response in self.subscriber_stream(
            request_iterator, runtime_pb2.SubscribeTopicEventsResponse,
            runtime_pb2.SubscribeTopicEventsResponseInitial, topic_event_request,
        ):
            yield response
