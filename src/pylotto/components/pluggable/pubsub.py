"""Pub/sub served by a pluggable component (``dapr.proto.components.v1.PubSub``).

Delivery maps onto the bidirectional ``PullMessages`` stream: the first request names the topic
(its metadata carries ``consumerID``, the consumer group), the component streams messages with
ids, and the sidecar answers each id **after the app answered**: an ack once the handler
succeeded, or an ack with ``ack_error`` once the ``backOff*`` policy gave up (the sidecar
retries a failed message itself, counting ``attempt``). Messages the stream had delivered but
the sidecar never answered (subscription closed, sidecar gone) are the component's to deliver
again. At most ``maxConcurrentHandlers`` messages are in the app's hands at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import ClassVar

import grpc
import grpc.aio

from pylotto.components.pluggable.channel import (
    KEEP_UNKNOWN_KEYS,
    PluggableComponent,
    PluggableSettings,
)
from pylotto.components.pubsub.base import (
    CONSUMER_ID,
    BulkPublishEntry,
    BulkPublishFailure,
    Handler,
    Message,
    PubSub,
    PubSubSettings,
    RetryPolicy,
    Subscription,
)
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata
from pylotto.proto.components import common_pb2, pubsub_pb2, pubsub_pb2_grpc

SERVICE = "dapr.proto.components.v1.PubSub"


class PluggablePubSubSettings(PluggableSettings, PubSubSettings):
    """``socketPath``, ``timeout``, ``consumerID``, ``maxConcurrentHandlers``, ``backOff*``."""

    model_config = KEEP_UNKNOWN_KEYS


class PullSubscription(Subscription):
    """One PullMessages stream feeding one handler."""

    def __init__(self, owner: PluggablePubSub, topic: str, handler: Handler,
                 call: grpc.aio.StreamStreamCall[pubsub_pb2.PullMessagesRequest,
                                                 pubsub_pb2.PullMessagesResponse],
                 slots: int, policy: RetryPolicy) -> None:
        self.topic = topic
        self._owner = owner
        self._handler = handler
        self._call = call
        self._slots = asyncio.Semaphore(slots)
        self._policy = policy
        self._closing = False
        self._running: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for response in self._call:
                await self._slots.acquire()
                if self._closing:  # left unanswered: the component delivers it again
                    self._slots.release()
                    continue
                task = asyncio.create_task(self._deliver(response))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        except grpc.aio.AioRpcError as exc:
            if not self._closing:
                self._owner.context.logger.warning(
                    "pubsub %s: PullMessages(%s) ended: %s", self._owner.name, self.topic,
                    exc.details() or exc.code().name)

    async def _deliver(self, response: pubsub_pb2.PullMessagesResponse) -> None:
        failures = 0
        first_failure = 0.0
        error = ""
        try:
            while True:
                message = Message(topic=response.topic_name or self.topic, data=response.data,
                                  metadata=dict(response.metadata), attempt=failures + 1,
                                  content_type=response.content_type)
                try:
                    await self._handler(message)
                    error = ""
                    break
                except Exception as exc:  # the app refused it: retry per policy
                    failures += 1
                    now = time.monotonic()
                    first_failure = first_failure or now
                    error = str(exc) or type(exc).__name__
                    if self._policy.gives_up(failures, now - first_failure):
                        break
                    await asyncio.sleep(self._policy.delay(failures))
            await self._answer(response.id, error)
        finally:
            self._slots.release()

    async def _answer(self, message_id: str, error: str) -> None:
        request = pubsub_pb2.PullMessagesRequest(ack_message_id=message_id)
        if error:
            request.ack_error.message = error
        async with self._write_lock:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await self._call.write(request)

    async def close(self) -> None:
        self._closing = True
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        async with self._write_lock:
            with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                await self._call.done_writing()
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(self._reader)
        except (TimeoutError, asyncio.CancelledError):
            self._call.cancel()
            self._reader.cancel()


class PluggablePubSub(PluggableComponent, PubSub):
    """Calls a remote PubSub; set ``socketPath`` or use a discovered ``pubsub.<socket>``."""

    Settings: ClassVar[type[ComponentSettings]] = PluggablePubSubSettings
    settings: PluggablePubSubSettings
    service: ClassVar[str] = SERVICE

    async def init(self) -> None:
        await self.connect()
        assert self.channel is not None
        self.stub = pubsub_pb2_grpc.PubSubStub(self.channel)
        await self.call(self.stub.Init,
                        pubsub_pb2.PubSubInitRequest(metadata=self.metadata_request()))
        self.set_features(await self.call(self.stub.Features, common_pb2.FeaturesRequest()))

    async def ping(self) -> None:
        await self.call(self.stub.Ping, common_pb2.PingRequest())

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        await self.call(self.stub.Publish, pubsub_pb2.PublishRequest(
            data=data, pubsub_name=self.name, topic=topic, metadata=dict(metadata),
            content_type=metadata.get("contentType", "")))

    async def bulk_publish(self, topic: str, entries: Sequence[BulkPublishEntry],
                           metadata: Metadata) -> list[BulkPublishFailure]:
        got = await self.call(self.stub.BulkPublish, pubsub_pb2.BulkPublishRequest(
            pubsub_name=self.name, topic=topic, metadata=dict(metadata),
            entries=[pubsub_pb2.BulkMessageEntry(entry_id=e.entry_id, event=e.data,
                                                 metadata=dict(e.metadata)) for e in entries]))
        return [BulkPublishFailure(f.entry_id, f.error) for f in got.failed_entries]

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        if self.channel is None:
            raise Unavailable(f"{self.label}: closed")
        call = self.stub.PullMessages()
        topic_metadata = {**metadata, CONSUMER_ID: self.consumer_group(metadata)}
        try:
            await call.write(pubsub_pb2.PullMessagesRequest(
                topic=pubsub_pb2.Topic(name=topic, metadata=topic_metadata)))
        except grpc.aio.AioRpcError as exc:
            raise self.map_error(exc) from None
        return PullSubscription(self, topic, handler, call,
                                self.settings.max_concurrent_handlers,
                                self.settings.retry_policy())
