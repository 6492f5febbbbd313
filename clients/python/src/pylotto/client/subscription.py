"""A streaming subscription (``SubscribeTopicEvents``): events without a callback server."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import grpc

from pylotto.client import _wire
from pylotto.client.types import ClientError, EventStatus, TopicEvent
from pylotto.proto.layotto import appcallback_pb2, runtime_pb2, runtime_pb2_grpc


class Subscription:
    """``async with client.subscribe(...) as sub: async for event in sub: await sub.ack(event)``.

    Every event must be answered with :meth:`ack` (SUCCESS, RETRY or DROP); an event left
    unanswered when the subscription closes is delivered again.
    """

    def __init__(self, stub: runtime_pb2_grpc.RuntimeStub,
                 initial: runtime_pb2.SubscribeTopicEventsRequestInitial) -> None:
        self._stub = stub
        self._initial = initial
        self._call: Any = None

    async def __aenter__(self) -> Subscription:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        """Send the initial request and wait for the sidecar's acceptance."""
        self._call = self._stub.SubscribeTopicEvents()
        try:
            await self._call.write(
                runtime_pb2.SubscribeTopicEventsRequest(initial_request=self._initial))
            reply = await self._call.read()
        except grpc.aio.AioRpcError as err:
            raise ClientError(err.code(), err.details() or "") from None
        if reply is grpc.aio.EOF or not reply.HasField("initial_response"):
            raise ClientError(grpc.StatusCode.UNKNOWN, "the sidecar refused the subscription")

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> TopicEvent:
        if self._call is None:
            raise StopAsyncIteration
        try:
            reply = await self._call.read()
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.CANCELLED:
                raise StopAsyncIteration from None
            raise ClientError(err.code(), err.details() or "") from None
        if reply is grpc.aio.EOF:
            raise StopAsyncIteration
        return _wire.topic_event(reply.event_message)

    async def ack(self, event: TopicEvent | str, status: EventStatus = EventStatus.SUCCESS) -> None:
        """Answer one event: SUCCESS (ack), RETRY (deliver again later) or DROP (ack, discard)."""
        if self._call is None:
            raise ClientError(grpc.StatusCode.CANCELLED, "the subscription is closed")
        event_id = event if isinstance(event, str) else event.id
        processed = runtime_pb2.SubscribeTopicEventsRequestProcessed(
            id=event_id,
            status=appcallback_pb2.TopicEventResponse(status=status.value),  # type: ignore[arg-type]
        )
        await self._call.write(runtime_pb2.SubscribeTopicEventsRequest(event_processed=processed))
