"""A streaming subscription (``SubscribeTopicEvents``): events without a callback server.

The sidecar ends a subscriber stream when the pubsub component under it is replaced (a hot
reload, ``ApplyConfiguration``) or when it restarts; the subscription then subscribes again
by itself (with backoff, for up to :data:`RESUBSCRIBE_WITHIN_SECONDS`), so iterating it goes
on. Events left unanswered on the ended stream are redelivered by the broker on the new one.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from types import TracebackType
from typing import Any

import grpc

from pylotto.client import _wire
from pylotto.client.types import ClientError, EventStatus, TopicEvent
from pylotto.proto.layotto import appcallback_pb2, runtime_pb2, runtime_pb2_grpc

log = logging.getLogger("pylotto.client")

RESUBSCRIBE_WITHIN_SECONDS = 30.0
"""How long a subscription ended by the sidecar keeps trying to subscribe again."""
RESUBSCRIBE_BACKOFF = (0.05, 2.0)
"""First and longest wait between two attempts to subscribe again."""


class Subscription:
    """``async with client.subscribe(...) as sub: async for event in sub: await sub.ack(event)``.

    Every event must be answered with :meth:`ack` (SUCCESS, RETRY or DROP); an event left
    unanswered when the subscription closes is delivered again. ``resubscribe=False``: a
    stream the sidecar ends ends the iteration instead.
    """

    def __init__(self, stub: runtime_pb2_grpc.RuntimeStub,
                 initial: runtime_pb2.SubscribeTopicEventsRequestInitial,
                 metadata: tuple[tuple[str, str], ...] = (), *, resubscribe: bool = True,
                 ) -> None:
        self._stub = stub
        self._initial = initial
        self._metadata = metadata
        self.resubscribe = resubscribe
        self.resubscribed = 0
        """How many times the sidecar ended the stream and it was subscribed again."""
        self._call: Any = None
        self._live: set[str] = set()
        """Events received on the current stream and not answered yet."""

    async def __aenter__(self) -> Subscription:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        """Send the initial request and wait for the sidecar's acceptance."""
        self._call = await self._connect()

    async def _connect(self) -> Any:
        call = self._stub.SubscribeTopicEvents(metadata=self._metadata)
        try:
            await call.write(
                runtime_pb2.SubscribeTopicEventsRequest(initial_request=self._initial))
            reply = await call.read()
        except grpc.aio.AioRpcError as err:
            raise ClientError(err.code(), err.details() or "") from None
        if reply is grpc.aio.EOF or not reply.HasField("initial_response"):
            call.cancel()
            raise ClientError(grpc.StatusCode.UNKNOWN, "the sidecar refused the subscription")
        return call

    async def _reconnect(self, why: str) -> None:
        """Subscribe again after the sidecar ended the stream; the last refusal is raised
        when it keeps refusing for :data:`RESUBSCRIBE_WITHIN_SECONDS`."""
        topic = f"{self._initial.pubsub_name}/{self._initial.topic}"
        log.info("subscription to %s ended by the sidecar (%s): subscribing again", topic, why)
        self._live.clear()
        deadline = time.monotonic() + RESUBSCRIBE_WITHIN_SECONDS
        wait, longest = RESUBSCRIBE_BACKOFF
        while True:
            await asyncio.sleep(wait * (1 - random.random() / 2))
            if self._call is None:  # closed meanwhile
                return
            try:
                call = await self._connect()
            except ClientError as err:
                if time.monotonic() >= deadline:
                    raise
                log.debug("subscribing again to %s: %s", topic, err)
                wait = min(longest, wait * 2)
                continue
            if self._call is None:
                call.cancel()
                return
            self._call = call
            self.resubscribed += 1
            return

    async def close(self) -> None:
        if self._call is not None:
            call, self._call = self._call, None
            call.cancel()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> TopicEvent:
        while True:
            call = self._call
            if call is None:
                raise StopAsyncIteration
            try:
                reply = await call.read()
            except grpc.aio.AioRpcError as err:
                if self._call is None or err.code() == grpc.StatusCode.CANCELLED:
                    raise StopAsyncIteration from None
                if not self.resubscribe or err.code() != grpc.StatusCode.UNAVAILABLE:
                    raise ClientError(err.code(), err.details() or "") from None
                await self._reconnect(f"{err.code().name}: {err.details()}")
                continue
            if reply is grpc.aio.EOF:
                if self._call is None or not self.resubscribe:
                    raise StopAsyncIteration
                await self._reconnect("stream ended")
                continue
            event = _wire.topic_event(reply.event_message)
            self._live.add(event.id)
            return event

    async def ack(self, event: TopicEvent | str, status: EventStatus = EventStatus.SUCCESS) -> None:
        """Answer one event: SUCCESS (ack), RETRY (deliver again later) or DROP (ack, discard).
        An event of a stream the sidecar has ended is not answered: the broker redelivers it."""
        if self._call is None:
            raise ClientError(grpc.StatusCode.CANCELLED, "the subscription is closed")
        event_id = event if isinstance(event, str) else event.id
        if event_id not in self._live:
            return
        self._live.discard(event_id)
        processed = runtime_pb2.SubscribeTopicEventsRequestProcessed(
            id=event_id,
            status=appcallback_pb2.TopicEventResponse(status=status.value),  # type: ignore[arg-type]
        )
        try:
            await self._call.write(
                runtime_pb2.SubscribeTopicEventsRequest(event_processed=processed))
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as err:
            # the stream ended under the event: the next read subscribes again
            log.debug("answer to event %s not sent: %r", event_id, err)
