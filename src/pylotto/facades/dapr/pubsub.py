"""BulkPublishEvent (and its Alpha1 twin), SubscribeTopicEventsAlpha1; PublishEvent is shared."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pylotto.appchannel.dapr_grpc import dapr_topic_event
from pylotto.capabilities.pubsub import BulkPublishItem
from pylotto.facades.common.pubsub import PublishRpcs, header


class DaprPubSubRpcs(PublishRpcs):
    async def BulkPublishEvent(self, request: Any, context: Any) -> Any:
        failures = await self.services.pubsub.bulk_publish(
            request.pubsub_name,
            request.topic,
            [BulkPublishItem(e.entry_id, e.event, e.content_type, dict(e.metadata))
             for e in request.entries],
            dict(request.metadata),
            trace_parent=header(context, "traceparent"),
            trace_state=header(context, "tracestate"),
        )
        return self.pb.BulkPublishResponse(failedEntries=[
            self.pb.BulkPublishResponseFailedEntry(entry_id=f.entry_id, error=f.error)
            for f in failures
        ])

    async def BulkPublishEventAlpha1(self, request: Any, context: Any) -> Any:
        return await self.BulkPublishEvent(request, context)

    async def SubscribeTopicEventsAlpha1(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        async for response in self.subscriber_stream(
            request_iterator, self.pb.SubscribeTopicEventsResponse,
            self.pb.SubscribeTopicEventsResponseInitial, dapr_topic_event,
        ):
            yield response
