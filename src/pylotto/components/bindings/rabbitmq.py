"""``bindings.rabbitmq``: one RabbitMQ queue, published to and read (Dapr's RabbitMQ binding).

Metadata (Dapr's): ``host`` (required: an ``amqp://`` URL), ``queueName`` (required), the
queue's ``durable``, ``deleteWhenUnused``, ``exclusive`` (all false by default), ``ttl`` /
``ttlInSeconds`` (the queue's ``x-message-ttl``), ``maxPriority`` (``x-max-priority``, above
255 is 255); the queue is declared when the binding starts, as Dapr's. ``prefetchCount``
(messages the broker sends ahead of the acks; 0: no limit) and ``reconnectWaitInSeconds``
(default 5s: the wait before reading again after the consumer failed to start) are the input
side's; ``timeout`` (pylotto's, default 10s) limits every call.

Operation ``create``: the data is published to the queue (default exchange, routing key
``queueName``), persistent, ``content-type`` ``text/plain``; every request metadata entry becomes
a message header; ``ttl``/``ttlInSeconds`` set the message's expiration (milliseconds),
``priority`` its priority (0..255, clamped), ``contentType``, ``messageID``, ``correlationID``
and ``type`` (case ignored) its properties. No data in the answer. pylotto waits for the broker's
confirm (Dapr's publishes without confirms), so a created message was taken.

Input, as Dapr's: the queue's messages are handed to the app one after the other, each with
its string headers as metadata (keys query-escaped, as Dapr's ``url.QueryEscape``); the app's
success acks the message, a failure nacks it with requeue (the broker hands it out again). A
message in flight when the reading stops is requeued by the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.bindings.base import (
    BindingRequest,
    BindingResponse,
    BindingSettings,
    InputBinding,
    InputEvent,
    InputHandler,
    OutputBinding,
)
from pylotto.components.bindings.request import metadata_value, requested_ttl
from pylotto.components.pubsub.rabbitmq import map_error
from pylotto.core.errors import InvalidArgument, PylottoError, Unavailable
from pylotto.core.metadata import Duration

PROPERTIES = (("contentType", "content_type"), ("messageID", "message_id"),
              ("correlationID", "correlation_id"), ("type", "type"))
"""Request metadata keys → message properties (components-contrib's
``ApplyMetadataToPublishing``)."""


class RabbitMQBindingSettings(BindingSettings):
    host: str = Field(alias="host", min_length=1)
    queue_name: str = Field(alias="queueName", min_length=1)
    durable: bool = False
    delete_when_unused: bool = Field(False, alias="deleteWhenUnused")
    exclusive: bool = False
    prefetch_count: int = Field(0, alias="prefetchCount", ge=0)
    max_priority: int | None = Field(None, alias="maxPriority", ge=0)
    reconnect_wait: Duration = Field(5.0, alias="reconnectWaitInSeconds", ge=0)
    ttl: str = Field("", alias="ttl")
    ttl_in_seconds: str = Field("", alias="ttlInSeconds")
    timeout: Duration = Field(10.0, alias="timeout", gt=0)


def message_ttl_ms(metadata: dict[str, str]) -> int | None:
    """Milliseconds of the TTL in ``metadata`` (None: not given)."""
    ttl = requested_ttl(metadata)
    return None if ttl is None else int(ttl / timedelta(milliseconds=1))


class RabbitMQBinding(InputBinding, OutputBinding):
    Settings = RabbitMQBindingSettings
    operations = ("create",)

    def __init__(self, name: str, settings: RabbitMQBindingSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.config = settings
        self.what = f"binding {name}"
        self.connection: Any = None
        self._channel: Any = None

    def _queue_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {}
        metadata = {"ttl": self.config.ttl, "ttlInSeconds": self.config.ttl_in_seconds}
        try:
            ttl = message_ttl_ms({k: v for k, v in metadata.items() if v})
        except InvalidArgument as exc:
            raise InvalidArgument(f"{self.what}: failed to parse TTL: {exc.message}") from None
        if ttl is not None:
            arguments["x-message-ttl"] = ttl
        if self.config.max_priority is not None:
            arguments["x-max-priority"] = min(self.config.max_priority, 255)
        return arguments

    async def init(self) -> None:
        import aio_pika

        arguments = self._queue_arguments()
        try:
            async with asyncio.timeout(self.config.timeout):
                self.connection = await aio_pika.connect_robust(
                    self.config.host, timeout=self.config.timeout,
                    client_properties={"connection_name": f"pylotto-{self.name}"})
                self._channel = await self.connection.channel(publisher_confirms=True)
                await self._declare(self._channel, arguments)
        except PylottoError:
            raise
        except Exception as exc:
            await self.close()
            raise map_error(exc, self.what) from exc

    async def _declare(self, channel: Any, arguments: dict[str, Any]) -> Any:
        return await channel.declare_queue(
            self.config.queue_name, durable=self.config.durable,
            auto_delete=self.config.delete_when_unused, exclusive=self.config.exclusive,
            arguments=arguments)

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                async with asyncio.timeout(self.config.timeout):
                    await connection.close()
            except Exception as exc:
                self.context.logger.debug("%s: closing: %r", self.what, exc)

    async def ping(self) -> None:
        connection, channel = self.connection, self._channel
        if (connection is None or connection.is_closed or not connection.connected.is_set()
                or channel is None or channel.is_closed):
            raise Unavailable(f"{self.what}: rabbitmq is not connected")
        try:
            async with asyncio.timeout(self.config.timeout):
                await channel.get_queue(self.config.queue_name, ensure=True)
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    def _message(self, request: BindingRequest) -> Any:
        import aio_pika

        metadata = dict(request.metadata)
        ttl = message_ttl_ms(metadata)
        priority: int | None = None
        if metadata.get("priority"):
            try:
                priority = min(max(int(metadata["priority"]), 0), 255)
            except ValueError:
                raise InvalidArgument("priority value must be a valid integer: actual is "
                                      f"'{metadata['priority']}'") from None
        properties: dict[str, Any] = {"content_type": "text/plain"}
        for key, field in PROPERTIES:
            value = metadata_value({k: v for k, v in metadata.items() if v}, key)
            if value:
                properties[field] = value
        return aio_pika.Message(
            request.data, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=dict(metadata), priority=priority,
            expiration=timedelta(milliseconds=ttl) if ttl is not None else None, **properties)

    async def invoke(self, request: BindingRequest) -> BindingResponse:
        if self._channel is None:
            raise Unavailable("channel/connection is not open")
        message = self._message(request)
        try:
            async with asyncio.timeout(self.config.timeout):
                await self._channel.default_exchange.publish(
                    message, routing_key=self.config.queue_name, timeout=self.config.timeout)
        except Exception as exc:
            raise map_error(exc, f"{self.what}: failed to publish message") from exc
        return BindingResponse()

    # ---- input -------------------------------------------------------------------------------

    async def read(self, handler: InputHandler) -> None:
        log = self.context.logger
        while True:
            try:
                channel, queue, inbox, tag = await self._consume()
            except PylottoError as err:
                log.error("%s: error consuming messages from queue [%s]: %s", self.what,
                          self.config.queue_name, err.message)
                await asyncio.sleep(self.config.reconnect_wait)
                continue
            try:
                while True:
                    await self._handle(handler, await inbox.get())
            finally:
                await self._stop_consuming(channel, queue, inbox, tag)

    async def _consume(self) -> tuple[Any, Any, asyncio.Queue[Any], str]:
        if self.connection is None:
            raise Unavailable(f"{self.what} is not open")
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        channel: Any = None
        try:
            async with asyncio.timeout(self.config.timeout):
                channel = await self.connection.channel()
                await channel.set_qos(prefetch_count=self.config.prefetch_count)
                queue = await self._declare(channel, self._queue_arguments())
                tag = await queue.consume(inbox.put, no_ack=False)
        except Exception as exc:
            if channel is not None:
                with contextlib.suppress(Exception):
                    await channel.close()
            raise map_error(exc, self.what) from exc
        return channel, queue, inbox, tag

    async def _handle(self, handler: InputHandler, message: Any) -> None:
        metadata = {quote_plus(str(key), safe=""): value
                    for key, value in (message.headers or {}).items() if isinstance(value, str)}
        try:
            await handler(InputEvent(bytes(message.body), metadata))
        except PylottoError:
            settle = message.nack(requeue=True)
        else:
            settle = message.ack()
        try:
            async with asyncio.timeout(self.config.timeout):
                await settle
        except Exception as exc:  # the channel is gone: the broker requeues the message
            self.context.logger.debug("%s: settling a message: %r", self.what, exc)

    async def _stop_consuming(self, channel: Any, queue: Any, inbox: asyncio.Queue[Any],
                              tag: str) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.config.timeout):
                await queue.cancel(tag)
                while not inbox.empty():  # received, never handed to the app
                    await inbox.get_nowait().nack(requeue=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.config.timeout):
                await channel.close()
