"""``nats`` / ``jetstream``: pub/sub on NATS JetStream with durable consumers (Dapr's
``pubsub.jetstream``).

Metadata: ``natsURL`` (default ``nats://127.0.0.1:4222``), ``streamName`` (default
``pylotto``), ``durableName`` (a prefix for the names of the durable consumers; default none),
``ackWait`` (default ``30s``: a message a subscriber received and did not settle for this
long — its sidecar died — is delivered again), ``maxDeliver`` (default -1, no limit: JetStream
stops delivering a message after this many deliveries, whatever the back-off says),
``maxAckPending`` (default 10000: messages delivered and not yet acknowledged per consumer
group, over all its members), ``timeout`` (default ``10s``: the limit of every call),
``consumerID``, ``maxConcurrentHandlers`` and the ``backOff*`` keys of every pub/sub (see
:mod:`.base`).

Layout: one stream, ``<streamName>``, holding the subjects ``<streamName>.<topic>`` (topics are
NATS subjects: dot-separated tokens, no spaces, ``*`` or ``>``), created when missing (file
storage, limits retention). Unlike Dapr, which publishes on the topic itself into a stream
created beforehand, the subjects carry the stream name, so the stream can be created by the
sidecar without claiming every subject. Each publish waits for JetStream's acknowledgement and
carries a ``Nats-Msg-Id``, so a publish repeated after a timeout is stored once; the metadata
travels in the ``Pylotto-Metadata`` header. A consumer group is a durable pull consumer per
(group, topic) (``durable_name``), explicit acks, deliver-all (a group created after some
publishes also gets the messages the stream still holds); members of the group pull from it in
turn. Its settings (``ackWait``, ``maxDeliver``, ``maxAckPending``) are applied again at each
subscribe.

Delivery: a subscription pulls a message only when one of its ``maxConcurrentHandlers`` slots is
free (so ``max_ack_pending``, which counts for the whole group, is not used for that bound:
set to ``maxConcurrentHandlers`` it would throttle a group of several sidecars to one
sidecar's worth). A message is acknowledged only after the handler returned; a failed one is
``nak``'d with the back-off delay and JetStream delivers it again, to any member (``attempt``
is its ``num_delivered``); one given up on is acknowledged (dropped with an error log). A
closing subscription naks what it has not finished, so it is delivered again at once.
Limitation: a handler call running longer than ``ackWait`` lets JetStream deliver the message
again meanwhile (handled twice): keep ``ackWait`` above the slowest handler call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from typing import Any

from pydantic import Field, field_validator

from pylotto.components.base import ComponentContext, cancel_requested, unless_cancelled
from pylotto.components.errors import DriverErrors
from pylotto.components.pubsub.base import (
    Handler,
    Message,
    PubSub,
    PubSubSettings,
    Subscription,
)
from pylotto.components.pubsub.delivery import BrokerSubscription, Delivery, Registered
from pylotto.core.errors import InvalidArgument, Unavailable
from pylotto.core.metadata import Duration
from pylotto.core.types import Metadata

FETCH_WAIT = 1.0
"""How long one pull waits for a message before the loop looks around again."""
_SUBJECT = re.compile(r"^[^\s*>.]+(\.[^\s*>.]+)*$")


class NatsSettings(PubSubSettings):
    nats_url: str = Field("nats://127.0.0.1:4222", alias="natsURL", min_length=1)
    stream_name: str = Field("pylotto", alias="streamName", pattern=r"^[A-Za-z0-9_-]+$")
    durable_name: str = Field("", alias="durableName", pattern=r"^[A-Za-z0-9_-]*$")
    ack_wait: Duration = Field(30.0, alias="ackWait", gt=0)
    max_deliver: int = Field(-1, alias="maxDeliver")
    max_ack_pending: int = Field(10_000, alias="maxAckPending", ge=1)
    timeout: Duration = Field(10.0, alias="timeout", gt=0)

    @field_validator("max_deliver")
    @classmethod
    def _some_or_unlimited(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("expected a positive number of deliveries, or -1 for no limit")
        return value


ERRORS = DriverErrors(
    "nats",
    timeout_errors=(),
    connection_errors=("builtins:TimeoutError", "builtins:OSError", *(
        f"nats.errors:{name}" for name in (
            "TimeoutError", "ConnectionClosedError", "NoServersError", "NoRespondersError",
            "StaleConnectionError", "OutboundBufferLimitError",
            "ConnectionReconnectingError", "ConnectionDrainingError")),
        # JetStream answering 503: no stream leader yet (an election, a server restarting),
        # or the JetStream system temporarily unavailable (API error code 10008)
        "nats.js.errors:NoStreamResponseError", "nats.js.errors:ServiceUnavailableError"),
    connection_message="{backend} unreachable: {type} {exc}",
    internal_message="{backend}: {type} {exc}",
)
"""nats-py's errors: timeouts, a lost or reconnecting connection and JetStream's 503s are
Unavailable, the rest Internal."""
map_error = ERRORS.map


def durable_name(group: str, topic: str, prefix: str = "") -> str:
    """A consumer name NATS accepts (no ``.``, ``*``, ``>`` or spaces), stable per pair."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", f"{group}__{topic}")[:48]
    digest = hashlib.sha256(f"{group}\0{topic}".encode()).hexdigest()[:12]
    return f"{prefix}{'_' if prefix else ''}{readable}_{digest}"


class _NatsSubscription(BrokerSubscription):
    def __init__(self, pubsub: NATSJetStreamPubSub, topic: str, group: str,
                 handler: Handler, pull: Any) -> None:
        settings = pubsub.settings
        super().__init__(topic, handler, slots=settings.max_concurrent_handlers,
                         policy=settings.retry_policy(), logger=pubsub.context.logger,
                         where=f"pubsub {pubsub.name} topic {topic} group {group}")
        self.pubsub = pubsub
        self.pull = pull

    async def receive(self) -> Delivery:
        import nats.errors

        while True:
            try:
                async with asyncio.timeout(FETCH_WAIT + self.pubsub.settings.timeout):
                    messages = await unless_cancelled(
                        self.pull.fetch(batch=1, timeout=FETCH_WAIT))
            except (nats.errors.TimeoutError, TimeoutError):
                if cancel_requested():  # nats-py turned our cancellation into a timeout
                    raise asyncio.CancelledError from None
                if self.pubsub.connection is not None and \
                        not self.pubsub.connection.is_connected:
                    raise Unavailable(f"{self.where}: nats is not connected") from None
                continue  # no message yet
            except Exception as exc:
                raise map_error(exc, self.where) from exc
            if messages:
                return self._delivery(messages[0])

    def _delivery(self, msg: Any) -> Delivery:
        headers = dict(msg.headers or {})
        metadata = json.loads(headers.get("Pylotto-Metadata", "{}"))
        attempt = int(msg.metadata.num_delivered)
        return Delivery(Message(self.topic, bytes(msg.data), metadata, attempt=attempt),
                        token=msg, failures=attempt - 1)

    async def _settle(self, what: str, call: Any) -> None:
        await self.settle(what, call, self.pubsub.settings.timeout, map_error)

    async def ack(self, delivery: Delivery) -> None:
        await self._settle("ack", delivery.token.ack())

    async def release(self, delivery: Delivery) -> None:
        await self._settle("nak", delivery.token.nak())

    async def redeliver_later(self, delivery: Delivery, delay: float) -> bool:
        await self._settle("nak", delivery.token.nak(delay=delay))
        return True

    async def stop_receiving(self) -> None:
        try:
            await self.pull.unsubscribe()
        except Exception as exc:  # the connection may be gone already
            self.log.debug("%s: unsubscribe: %r", self.where, exc)


class NATSJetStreamPubSub(PubSub):
    Settings = NatsSettings
    settings: NatsSettings

    def __init__(self, name: str, settings: NatsSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.what = f"pubsub {name}"
        self.connection: Any = None
        self.js: Any = None
        self._subscriptions: set[_NatsSubscription] = set()

    async def init(self) -> None:
        import nats

        settings = self.settings
        try:
            async with asyncio.timeout(settings.timeout):
                self.connection = await nats.connect(
                    settings.nats_url, connect_timeout=settings.timeout,
                    max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                    allow_reconnect=True, error_cb=self._error, name=f"pylotto-{self.name}")
            self.js = self.connection.jetstream(timeout=settings.timeout)
            await self._ensure_stream()
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def _error(self, exc: Exception) -> None:
        self.context.logger.debug("pubsub %s: nats: %r", self.name, exc)

    async def _ensure_stream(self) -> None:
        import nats.js.errors
        from nats.js.api import StreamConfig

        name = self.settings.stream_name
        try:
            await self.js.stream_info(name)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        connection, self.connection, self.js = self.connection, None, None
        if connection is None:
            return
        try:
            async with asyncio.timeout(self.settings.timeout):
                if connection.is_connected:
                    await connection.drain()
                    return
        except Exception as exc:
            self.context.logger.debug("pubsub %s: draining: %r", self.name, exc)
        try:  # not connected (a server away must not fail the shutdown)
            async with asyncio.timeout(self.settings.timeout):
                await connection.close()
        except Exception as exc:
            self.context.logger.debug("pubsub %s: closing: %r", self.name, exc)

    async def ping(self) -> None:
        if self.connection is None or not self.connection.is_connected:
            raise Unavailable(f"{self.what}: nats is not connected")

    def subject(self, topic: str) -> str:
        if not _SUBJECT.match(topic):
            raise InvalidArgument(f"{self.what}: topic {topic!r} is not a NATS subject "
                                  "(dot-separated tokens without spaces, '*' or '>')")
        return f"{self.settings.stream_name}.{topic}"

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        subject = self.subject(topic)
        headers = {"Nats-Msg-Id": str(uuid.uuid4()),
                   "Pylotto-Metadata": json.dumps(dict(metadata))}
        if self.js is None or self.connection is None:
            raise Unavailable(f"{self.what} is not open")
        if not self.connection.is_connected:
            # fail now rather than after the timeout (and leave nothing in the client's
            # reconnect buffer that would be published once the server is back)
            raise Unavailable(f"{self.what}: nats is not connected")
        try:
            async with asyncio.timeout(self.settings.timeout):
                await self.js.publish(subject, data, headers=headers,
                                      stream=self.settings.stream_name)
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        group = self.consumer_group(metadata)
        durable = durable_name(group, topic, self.settings.durable_name)
        config = ConsumerConfig(
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL, ack_wait=self.settings.ack_wait,
            max_deliver=self.settings.max_deliver, max_ack_pending=self.settings.max_ack_pending,
            filter_subject=self.subject(topic))
        if self.js is None:
            raise Unavailable(f"{self.what} is not open")
        try:
            async with asyncio.timeout(self.settings.timeout):
                # create the consumer, or apply the settings to the existing one
                await self.js.add_consumer(self.settings.stream_name, config)
                pull = await self.js.pull_subscribe(self.subject(topic), durable=durable,
                                                    stream=self.settings.stream_name,
                                                    config=config)
        except Exception as exc:
            raise map_error(exc, self.what) from exc
        subscription = _NatsSubscription(self, topic, group, handler, pull)
        subscription.start()
        return Registered(subscription, self._subscriptions)

