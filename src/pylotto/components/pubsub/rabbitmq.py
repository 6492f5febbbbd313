"""``rabbitmq``: pub/sub on RabbitMQ (Dapr's ``pubsub.rabbitmq``), with aio-pika.

Metadata: ``connectionString`` (default ``amqp://guest:guest@127.0.0.1:5672/``),
``exchangeKind`` (``fanout``, default, or ``topic``), ``queueType`` (``quorum``, default, or
``classic``), ``timeout`` (default ``10s``: the limit of every call), ``consumerID``,
``maxConcurrentHandlers`` (the channel's prefetch) and the ``backOff*`` keys of every pub/sub
(see :mod:`.base`).

Layout: one durable exchange per topic (the topic name); a consumer group is a durable queue
``<group>-<topic>`` bound to it, so members of a group take turns and every group gets every
message. Publishes are persistent and wait for the broker's confirm. A subscriber acknowledges
a message only after the handler returned; a failed one stays unacknowledged while the back-off
runs and is handled again; if the sidecar goes away meanwhile, RabbitMQ hands it to another
member (unacknowledged messages are never lost). Quorum queues count deliveries
(``x-delivery-count``), which gives ``attempt``. The connection is robust: after an outage it
reconnects and restores queues and consumers by itself; publishes meanwhile fail with
Unavailable.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Literal

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.pubsub.base import Handler, Message, PubSub, PubSubSettings, Subscription
from pylotto.components.pubsub.delivery import BrokerSubscription, Delivery, Registered
from pylotto.errors import Internal, PylottoError, Unavailable
from pylotto.metadata import Duration
from pylotto.types import Metadata

METADATA_HEADER = "pylotto-metadata"


class RabbitMQSettings(PubSubSettings):
    connection_string: str = Field("amqp://guest:guest@127.0.0.1:5672/",
                                   alias="connectionString", min_length=1)
    exchange_kind: Literal["fanout", "topic"] = Field("fanout", alias="exchangeKind")
    queue_type: Literal["quorum", "classic"] = Field("quorum", alias="queueType")
    timeout: Duration = Field(10.0, alias="timeout", gt=0)


def map_error(exc: BaseException, what: str) -> PylottoError:
    import aio_pika.exceptions
    import aiormq.exceptions

    if isinstance(exc, PylottoError):
        return exc
    if isinstance(exc, TimeoutError | OSError | ConnectionError
                  | aio_pika.exceptions.AMQPConnectionError
                  | aio_pika.exceptions.ChannelInvalidStateError
                  | aiormq.exceptions.ChannelInvalidStateError
                  | aiormq.exceptions.ConnectionClosed):
        return Unavailable(f"{what}: rabbitmq unreachable: {type(exc).__name__} {exc}")
    return Internal(f"{what}: rabbitmq: {type(exc).__name__} {exc}")


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
            await self.channel.set_qos(prefetch_count=settings.max_concurrent_handlers)
            exchange = await self.pubsub.exchange(self.channel, self.topic)
            arguments = {"x-queue-type": settings.queue_type}
            self.queue = await self.channel.declare_queue(f"{self.group}-{self.topic}",
                                                          durable=True, arguments=arguments)
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
        if self.connection is None or self.connection.is_closed or \
                not self.connection.connected.is_set():
            raise Unavailable(f"{self.what}: rabbitmq is not connected")

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
