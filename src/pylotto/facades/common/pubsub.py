"""PublishEvent, and the subscriber stream both dialects speak (Layotto's SubscribeTopicEvents,
Dapr's SubscribeTopicEventsAlpha1: same messages, same oneof names, different packages)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from google.protobuf import empty_pb2

from pylotto.appchannel.base import TopicEvent
from pylotto.capabilities.event_stream import EventStream
from pylotto.capabilities.pubsub import PublishRequest
from pylotto.core.errors import InvalidArgument, PlainError, PylottoError
from pylotto.core.tasks import stop_task
from pylotto.facades.common.base import RuntimeRpcs

log = logging.getLogger("pylotto.grpc.pubsub")

_REQUEST_KIND: Final = "subscribe_topic_events_request_type"


def header(context: Any, name: str) -> str:
    """The first value of gRPC metadata ``name`` (lower case), or ""."""
    for key, value in context.invocation_metadata() or ():
        if key.lower() == name and isinstance(value, str):
            return value
    return ""


async def _read_verdicts(requests: AsyncIterator[Any], stream: EventStream,
                         errors: list[PylottoError]) -> None:
    """Apply each ``event_processed``; the client closing its side ends the subscription.
    A protocol error is put in ``errors`` before the stream closes."""
    try:
        async for request in requests:
            if request.WhichOneof(_REQUEST_KIND) != "event_processed":
                errors.append(
                    InvalidArgument("only event_processed messages may follow the initial request")
                )
                break
            processed = request.event_processed
            stream.ack(processed.id, processed.status.status)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the client went away mid-read
        log.debug("subscriber stream on topic %s ended: %r", stream.topic, exc)
    await stream.close()


class PublishRpcs(RuntimeRpcs):
    async def PublishEvent(self, request: Any, context: Any) -> empty_pb2.Empty:
        await self.services.pubsub.publish(
            PublishRequest(
                pubsub_name=request.pubsub_name,
                topic=request.topic,
                data=request.data,
                data_content_type=request.data_content_type,
                metadata=dict(request.metadata),
                trace_parent=header(context, "traceparent"),
                trace_state=header(context, "tracestate"),
            )
        )
        return empty_pb2.Empty()

    async def subscriber_stream(
        self,
        request_iterator: AsyncIterator[Any],
        response: type[Any],
        initial_response: type[Any],
        event_message: Callable[[TopicEvent], Any],
    ) -> AsyncIterator[Any]:
        """Serve one subscriber stream: ``initial_request`` first, then events out
        (``response(event_message=...)``) and ``event_processed`` verdicts in."""
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof(_REQUEST_KIND) != "initial_request":
            raise PlainError("initial request is required")  # daprd's and Layotto's: UNKNOWN
        initial = first.initial_request
        stream = await self.services.pubsub.subscribe_stream(
            initial.pubsub_name, initial.topic, dict(initial.metadata),
            dead_letter_topic=getattr(initial, "dead_letter_topic", ""),
        )
        errors: list[PylottoError] = []
        reader = asyncio.create_task(_read_verdicts(requests, stream, errors))
        try:
            yield response(initial_response=initial_response())
            async for event in stream.events():
                yield response(event_message=event_message(event))
            if errors:
                raise errors[0]
        finally:
            await stop_task(reader)
            await stream.close()
