"""BulkPublishEvent (and its Alpha1 twin), SubscribeTopicEventsAlpha1; PublishEvent is shared.

A bulk publish answers as daprd's gRPC API does: all entries taken, an empty response; any
entry refused, the publish error (INTERNAL, ``DAPR_PUBSUB_PUBLISH_MESSAGE``) of the first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pylotto.appchannel.dapr_grpc import dapr_topic_event
from pylotto.capabilities.pubsub import BulkPublishItem
from pylotto.core.errors import Internal
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
        if failures:
            # daprd's gRPC API answers a bulk publish some entries of which failed with the
            # publish error of the first (its HTTP API lists them: see the HTTP facade)
            raise Internal(
                f"{len(failures)} of {len(request.entries)} entries were not published to "
                f"topic {request.topic}: {failures[0].error}", where="pubsub.publish",
                name=request.pubsub_name, topic=request.topic, detail=failures[0].error)
        return self.pb.BulkPublishResponse()

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
