"""``bindings.mqtt3``: an MQTT 3.1.1 topic, published to and read (Dapr's MQTT binding).

Metadata (Dapr's): ``url`` (required: ``tcp://user:password@host:1883``, ``mqtt://`` too),
``topic`` (required: the default topic), ``consumerID`` (required: the producer connects with
client id ``<consumerID>-producer``, as Dapr's), ``retain`` (default false), ``cleanSession``
(default false), ``backOffMaxRetries`` (input: how many times a failed event is handed to the
app again, 5 s apart; default 0, negative: for ever); ``qos`` is deprecated in Dapr and
ignored with a warning (QoS is always 1); ``timeout`` (pylotto's, default 10s) limits each
publish. TLS keys (``caCert``, ``clientCert``, ``clientKey``) are not supported (warned as
unknown keys).

Operation ``create``: the data is published (QoS 1, ``retain`` as configured) to request
metadata ``topic`` or the default topic; no data in the answer. As Dapr's, the connection is
made on the first publish (a broker that is down does not fail the start) and a failed publish
is tried 3 more times 200 ms apart, reconnecting as needed.

Input, as Dapr's: client id ``<consumerID>-consumer`` subscribes to ``topic`` with QoS 1; each
message goes to the app (several at once) with metadata ``topic``; the app's success acks it
(PUBACK); a failure is retried ``backOffMaxRetries`` times 5 s apart, then logged and left
unacknowledged (a broker keeping the session, ``cleanSession`` false, sends it again when the
consumer reconnects). A dropped connection is made again (after 0.5 s, doubling to 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from pylotto.components.backoff import Backoff
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
from pylotto.components.pubsub.mqtt import map_error
from pylotto.core.errors import PylottoError, Unavailable
from pylotto.core.metadata import Duration

QOS = 1
RETRIES = 3
RETRY_INTERVAL = 0.2
EVENT_RETRY_INTERVAL = 5.0
"""Between the attempts of a failed input event (Dapr's constant back-off)."""


class Mqtt3BindingSettings(BindingSettings):
    url: str = Field(alias="url", min_length=1)
    topic: str = Field(alias="topic", min_length=1)
    consumer_id: str = Field(alias="consumerID", min_length=1)
    retain: bool = False
    clean_session: bool = Field(False, alias="cleanSession")
    back_off_max_retries: int = Field(0, alias="backOffMaxRetries")
    qos: str = Field("", alias="qos")
    timeout: Duration = Field(10.0, alias="timeout", gt=0)

    @field_validator("url")
    @classmethod
    def _address(cls, value: str) -> str:
        parts = urlsplit(value if "://" in value else f"tcp://{value}")
        if parts.scheme not in ("tcp", "mqtt") or not parts.hostname:
            raise ValueError(f"url {value!r}: expected tcp://host:1883")
        return value

    def address(self) -> dict[str, Any]:
        parts = urlsplit(self.url if "://" in self.url else f"tcp://{self.url}")
        return {"hostname": parts.hostname, "port": parts.port or 1883,
                "username": parts.username, "password": parts.password}


async def disconnect(client: Any) -> None:
    with contextlib.suppress(Exception):
        await client.__aexit__(None, None, None)


class Mqtt3Binding(InputBinding, OutputBinding):
    Settings = Mqtt3BindingSettings
    operations = ("create",)
    per_process = True
    """Its client ids are fixed (Dapr's ``<consumerID>-producer`` / ``-consumer``): the worker
    processes of ``--workers`` would take them from one another (a broker disconnects a client
    whose id a new connection takes), so it is refused there."""

    def __init__(self, name: str, settings: Mqtt3BindingSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.config = settings
        self.what = f"binding {name}"
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def init(self) -> None:
        if self.config.qos:
            self.context.logger.warning("binding %s: metadata property 'qos' has been "
                                        "deprecated and is ignored; qos is set to 1", self.name)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.timeout):
                    await disconnect(producer)

    async def ping(self) -> None:
        await self._client()

    async def _client(self) -> Any:
        """The producer's connection, (re)opened on demand."""
        import aiomqtt

        async with self._lock:
            if self._producer is not None and self._producer._disconnected.done():
                await disconnect(self._producer)
                self._producer = None
            if self._producer is None:
                client = aiomqtt.Client(**self.config.address(),
                                        identifier=f"{self.config.consumer_id}-producer",
                                        clean_session=self.config.clean_session,
                                        timeout=self.config.timeout)
                try:
                    async with asyncio.timeout(self.config.timeout):
                        await client.__aenter__()
                except Exception as exc:
                    await disconnect(client)
                    raise map_error(exc, f"{self.what}: failed to create producer "
                                         "connection") from exc
                self._producer = client
            return self._producer

    async def _publish(self, topic: str, data: bytes) -> None:
        client = await self._client()
        try:
            async with asyncio.timeout(self.config.timeout):
                await client.publish(topic, data, qos=QOS, retain=self.config.retain)
        except Exception as exc:
            error = map_error(exc, f"{self.what}: failed to publish")
            if isinstance(error, Unavailable):  # reconnect on the next try
                await disconnect(client)
                if self._producer is client:
                    self._producer = None
            raise error from exc

    async def invoke(self, request: BindingRequest) -> BindingResponse:
        topic = request.metadata.get("topic") or self.config.topic
        for attempt in range(RETRIES + 1):
            try:
                await self._publish(topic, request.data)
                return BindingResponse()
            except PylottoError as err:
                if attempt == RETRIES:
                    raise
                self.context.logger.debug("%s: could not publish MQTT message, retrying: %s",
                                          self.what, err.message)
                await asyncio.sleep(RETRY_INTERVAL)
        raise AssertionError("unreachable")

    # ---- input -------------------------------------------------------------------------------

    async def read(self, handler: InputHandler) -> None:
        log = self.context.logger
        running: set[asyncio.Task[None]] = set()
        backoff = Backoff()
        try:
            while True:
                try:
                    client = await self._consumer()
                except PylottoError as err:
                    delay = backoff.failed()
                    log.warning("%s: %s; retrying in %.1fs", self.what, err.message, delay)
                    await asyncio.sleep(delay)
                    continue
                backoff.succeeded()
                try:
                    async for message in client.messages:
                        task = asyncio.create_task(self._handle(handler, client, message))
                        running.add(task)
                        task.add_done_callback(running.discard)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the connection dropped
                    log.warning("%s: connection with the broker lost: %s", self.what, exc)
                finally:
                    await disconnect(client)
        finally:
            for task in running:
                task.cancel()

    async def _consumer(self) -> Any:
        import aiomqtt

        client = aiomqtt.Client(**self.config.address(),
                                identifier=f"{self.config.consumer_id}-consumer",
                                clean_session=self.config.clean_session,
                                timeout=self.config.timeout)
        client._client.manual_ack_set(True)  # PUBACK after the app's success
        try:
            async with asyncio.timeout(self.config.timeout):
                await client.__aenter__()
                await client.subscribe(self.config.topic, qos=QOS)
        except Exception as exc:
            await disconnect(client)
            raise map_error(exc, f"{self.what}: failed to connect") from exc
        self.context.logger.info("%s: subscribed to topic %s (qos: %d)", self.what,
                                 self.config.topic, QOS)
        return client

    async def _handle(self, handler: InputHandler, client: Any, message: Any) -> None:
        retries = self.config.back_off_max_retries
        attempt = 0
        event = InputEvent(bytes(message.payload), {"topic": str(message.topic)})
        while True:
            try:
                await handler(event)
            except PylottoError as err:
                if 0 <= retries <= attempt:
                    self.context.logger.error("%s: failed processing MQTT message: %s/%d: %s",
                                              self.what, message.topic, message.mid,
                                              err.message)
                    return
                attempt += 1
                await asyncio.sleep(EVENT_RETRY_INTERVAL)
                continue
            if message.qos:
                with contextlib.suppress(Exception):  # a dropped connection: redelivered
                    client._client.ack(message.mid, message.qos)
            return
