"""``rabbitmq``: pub/sub on RabbitMQ (Dapr's ``pubsub.rabbitmq``), with aio-pika.

Metadata: ``connectionString`` (default ``amqp://guest:guest@127.0.0.1:5672/``),
``exchangeKind`` (``fanout``, default, or ``topic``), ``durable`` (default true: the group
queues survive a broker restart), ``deletedWhenUnused`` (default false: a group queue is kept
while the group has no subscriber, so it keeps the messages published meanwhile),
``queueType`` (``quorum`` or ``classic``; default quorum, classic when ``durable`` is false or
``deletedWhenUnused`` true, which quorum queues do not allow), ``prefetchCount`` (messages the
broker sends a subscription ahead of its acknowledgements; default ``maxConcurrentHandlers``,
0 = no limit), ``timeout`` (default ``10s``: the limit of every call), ``consumerID``,
``maxConcurrentHandlers`` and the ``backOff*`` keys of every pub/sub (see :mod:`.base`).
Unlike Dapr (``durable`` false and ``deletedWhenUnused`` true by default) the defaults keep a
group's messages while nobody listens, as the pub/sub contract asks.

Layout: one durable exchange per topic (the topic name; always durable, whatever ``durable``
says, so that components that differ in it can share a topic); a consumer group is a queue
``<group>-<topic>`` bound to it, so members of a group take turns and every group gets every
message. Publishes are persistent (delivery mode 2) and wait for the broker's confirm.

Delivery: a subscriber acknowledges a message only after the handler returned. A failed one
stays unacknowledged while the back-off runs (without holding a handler slot) and is handed to
the handler again; if the sidecar goes away meanwhile, RabbitMQ hands it to another member
(unacknowledged messages are never lost). A message given up on is acknowledged (dropped with
an error log). A closing subscription nacks (requeues) what it has not finished. Quorum queues
count deliveries (``x-delivery-count``, from the second delivery on), which gives ``attempt``
across sidecars; on classic queues a message the broker delivers again is known only as
redelivered, so it starts at ``attempt`` 2 whatever its history. Retries within one sidecar
count locally on top.

The connection is robust: after an outage it reconnects and restores queues and consumers by
itself; publishes meanwhile fail with Unavailable.

Limitations: RabbitMQ closes a channel holding a message unacknowledged longer than its
``consumer_timeout`` (30 minutes by default); a message retried in the sidecar for that long
(``backOffMaxElapsedTime`` 0 or above 30 minutes) makes the broker close the subscription's
channel and requeue its messages. A delivery the sidecar received on a connection that then
dropped cannot be settled any more: the broker delivers it again (possibly to another member)
while the sidecar may still finish it, so it can be handled twice (at-least-once).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from pylotto.components.base import ComponentContext
from pylotto.components.errors import DriverErrors, Rule
from pylotto.components.pubsub.base import Handler, Message, PubSub, PubSubSettings, Subscription
from pylotto.components.pubsub.delivery import BrokerSubscription, Delivery, Registered
from pylotto.core.errors import PylottoError, Unavailable
from pylotto.core.metadata import Duration
from pylotto.core.types import Metadata

METADATA_HEADER = "pylotto-metadata"


class RabbitMQSettings(PubSubSettings):
    connection_string: str = Field("amqp://guest:guest@127.0.0.1:5672/",
                                   alias="connectionString", min_length=1)
    exchange_kind: Literal["fanout", "topic"] = Field("fanout", alias="exchangeKind")
    durable: bool = True
    deleted_when_unused: bool = Field(False, alias="deletedWhenUnused")
    queue_type: Literal["quorum", "classic"] | None = Field(None, alias="queueType")
    prefetch_count: int | None = Field(None, alias="prefetchCount", ge=0)
    timeout: Duration = Field(10.0, alias="timeout", gt=0)

    @field_validator("queue_type")
    @classmethod
    def _quorum_is_durable(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "quorum" and (not info.data.get("durable", True)
                                  or info.data.get("deleted_when_unused", False)):
            raise ValueError("quorum queues are durable and never deleted when unused; "
                             "use queueType classic")
        return value

    def queue_kind(self) -> str:
        if self.queue_type:
            return self.queue_type
        return "quorum" if self.durable and not self.deleted_when_unused else "classic"

    def prefetch(self) -> int:
        if self.prefetch_count is None:
            return self.max_concurrent_handlers
        return self.prefetch_count


ERRORS = DriverErrors(
    "rabbitmq",
    timeout_errors=(),
    connection_errors=(
        "builtins:TimeoutError", "builtins:OSError", "builtins:ConnectionError",
        "aio_pika.exceptions:AMQPConnectionError", "aio_pika.exceptions:ChannelInvalidStateError",
        "aiormq.exceptions:ChannelInvalidStateError", "aiormq.exceptions:ConnectionClosed"),
    rules=(
        # the broker nacked a confirmed publish: a full queue with x-overflow reject-publish,
        # a quorum queue without a leader (an election) — a later publish may be taken
        Rule(("aiormq.exceptions:DeliveryError",), Unavailable,
             "{backend} did not take the message (nack), try again: {reason}",
             when=lambda exc: type(exc).__name__ == "DeliveryError",
             reason=lambda exc: getattr(exc, "frame", None) or exc),
        # a channel closed without one of the specific reasons (not found, precondition,
        # access, locked): closed with its connection, or CONNECTION_FORCED (a node stopping)
        Rule(("aiormq.exceptions:ChannelClosed",), Unavailable,
             "{backend}: channel closed: {reason}",
             when=lambda exc: type(exc).__name__ == "ChannelClosed"),
    ),
    connection_message="{backend} unreachable: {type} {exc}",
    internal_message="{backend}: {type} {exc}",
)
"""aio-pika's errors: a broken connection or channel and a nacked publish are Unavailable,
the rest Internal."""
map_error = ERRORS.map


def queue_name(group: str, topic: str) -> str:
    """The queue of consumer group ``group`` on ``topic`` (Dapr's ``<consumerID>-<topic>``)."""
    return f"{group}-{topic}"


class _QueueSubscription(BrokerSubscription):
    def __init__(self, pubsub: RabbitMQPubSub, topic: str, group: str, handler: Handler) -> None:
        settings = pubsub.settings
        super().__init__(topic, handler, slots=settings.max_concurrent_handlers,
                         policy=settings.retry_policy(), logger=pubsub.context.logger,
                         where=f"pubsub {pubsub.name} topic {topic} group {group}")
        self.pubsub = pubsub
        self.group = group
        self.channel: Any = None
        self.queue: Any = None
        self.tag = ""
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()

    async def open(self) -> None:
        settings = self.pubsub.settings
        async with asyncio.timeout(settings.timeout):
            self.channel = await self.pubsub.connection.channel()
            await self.channel.set_qos(prefetch_count=settings.prefetch())
            exchange = await self.pubsub.exchange(self.channel, self.topic)
            arguments = {"x-queue-type": settings.queue_kind()}
            self.queue = await self.channel.declare_queue(
                queue_name(self.group, self.topic), durable=settings.durable,
                auto_delete=settings.deleted_when_unused, arguments=arguments)
            await self.queue.bind(exchange, routing_key=self.topic)
            self.tag = await self.queue.consume(self._inbox.put)

    async def receive(self) -> Delivery:
        message = await self._inbox.get()
        headers = dict(message.headers or {})
        metadata = json.loads(headers.get(METADATA_HEADER) or "{}")
        count = headers.get("x-delivery-count")
        attempt = int(count) + 1 if count is not None else (2 if message.redelivered else 1)
        return Delivery(Message(self.topic, bytes(message.body), metadata, attempt=attempt),
                        token=message, failures=attempt - 1)

    async def _settle(self, what: str, call: Any) -> None:
        await self.settle(what, call, self.pubsub.settings.timeout, map_error)

    async def ack(self, delivery: Delivery) -> None:
        await self._settle("ack", delivery.token.ack())

    async def release(self, delivery: Delivery) -> None:
        await self._settle("nack", delivery.token.nack(requeue=True))

    async def stop_receiving(self) -> None:
        try:
            async with asyncio.timeout(self.pubsub.settings.timeout):
                await self.queue.cancel(self.tag)
        except Exception as exc:
            self.log.debug("%s: cancel: %r", self.where, exc)
        while not self._inbox.empty():  # received, never handed to the handler
            message = self._inbox.get_nowait()
            try:
                await self._settle("nack", message.nack(requeue=True))
            except PylottoError:
                break  # the channel is gone: the broker requeues them itself

    async def close(self) -> None:
        await super().close()
        if self.channel is not None:
            try:
                async with asyncio.timeout(self.pubsub.settings.timeout):
                    await self.channel.close()
            except Exception as exc:
                self.log.debug("%s: closing the channel: %r", self.where, exc)


class RabbitMQPubSub(PubSub):
    Settings = RabbitMQSettings
    settings: RabbitMQSettings

    def __init__(self, name: str, settings: RabbitMQSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.what = f"pubsub {name}"
        self.connection: Any = None
        self._publisher: Any = None
        self._exchanges: dict[str, Any] = {}
        self._subscriptions: set[_QueueSubscription] = set()

    async def init(self) -> None:
        import aio_pika

        try:
            async with asyncio.timeout(self.settings.timeout):
                self.connection = await aio_pika.connect_robust(
                    self.settings.connection_string, timeout=self.settings.timeout,
                    client_properties={"connection_name": f"pylotto-{self.name}"})
                self._publisher = await self.connection.channel(publisher_confirms=True)
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                async with asyncio.timeout(self.settings.timeout):
                    await connection.close()
            except Exception as exc:
                self.context.logger.debug("pubsub %s: closing: %r", self.name, exc)

    async def ping(self) -> None:
        """A round trip to the broker (a passive declare of ``amq.fanout``, which always
        exists), on the publishing channel."""
        connection = self.connection
        if connection is None or connection.is_closed or not connection.connected.is_set():
            raise Unavailable(f"{self.what}: rabbitmq is not connected")
        try:
            async with asyncio.timeout(self.settings.timeout):
                await self._publisher.get_exchange("amq.fanout", ensure=True)
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def exchange(self, channel: Any, topic: str) -> Any:
        import aio_pika

        kind = aio_pika.ExchangeType(self.settings.exchange_kind)
        return await channel.declare_exchange(topic, kind, durable=True)

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        import aio_pika

        if self._publisher is None:
            raise Unavailable(f"{self.what} is not open")
        message = aio_pika.Message(
            data, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(uuid.uuid4()),
            headers={METADATA_HEADER: json.dumps(dict(metadata))})
        try:
            async with asyncio.timeout(self.settings.timeout):
                exchange = self._exchanges.get(topic)
                if exchange is None:
                    exchange = self._exchanges[topic] = await self.exchange(self._publisher,
                                                                            topic)
                await exchange.publish(message, routing_key=topic,
                                       mandatory=False, timeout=self.settings.timeout)
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        subscription = _QueueSubscription(self, topic, self.consumer_group(metadata), handler)
        try:
            await subscription.open()
        except Exception as exc:
            raise map_error(exc, self.what) from exc
        subscription.start()
        return Registered(subscription, self._subscriptions)
