"""``nats`` / ``jetstream``: pub/sub on NATS JetStream with durable consumers (Dapr's
``pubsub.jetstream``).

Metadata: ``natsURL`` (default ``nats://127.0.0.1:4222``), ``streamName`` (default
``pylotto``), ``ackWait`` (default ``30s``: a message a subscriber received and did not settle
for this long — its sidecar died — is delivered again), ``timeout`` (default ``10s``: the limit
of every call), ``consumerID``, ``maxConcurrentHandlers`` and the ``backOff*`` keys of every
pub/sub (see :mod:`.base`).

Layout: one stream, ``<streamName>``, holding the subjects ``<streamName>.<topic>`` (topics are
NATS subject tokens: no spaces, ``*`` or ``>``), created when missing. Each publish waits for
JetStream's acknowledgement and carries a ``Nats-Msg-Id``, so a publish repeated after a
timeout is stored once. A consumer group is a durable pull consumer per (group, topic) with
explicit acks: members of the group pull from it in turn. A message is acknowledged only after
the handler returned; a failed one is ``nak``'d with the back-off delay and JetStream delivers
it again (``attempt`` is its ``num_delivered``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from typing import Any

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.pubsub.base import (
    Handler,
    Message,
    PubSub,
    PubSubSettings,
    Subscription,
)
from pylotto.components.pubsub.delivery import BrokerSubscription, Delivery, Registered
from pylotto.errors import Internal, InvalidArgument, PylottoError, Unavailable
from pylotto.metadata import Duration
from pylotto.types import Metadata

FETCH_WAIT = 1.0
"""How long one pull waits for a message before the loop looks around again."""
_TOKEN = re.compile(r"^[^\s*>]+$")


class NatsSettings(PubSubSettings):
    nats_url: str = Field("nats://127.0.0.1:4222", alias="natsURL", min_length=1)
    stream_name: str = Field("pylotto", alias="streamName", pattern=r"^[A-Za-z0-9_-]+$")
    ack_wait: Duration = Field(30.0, alias="ackWait", gt=0)
    timeout: Duration = Field(10.0, alias="timeout", gt=0)


def map_error(exc: BaseException, what: str) -> PylottoError:
    import nats.errors

    if isinstance(exc, PylottoError):
        return exc
    if isinstance(exc, TimeoutError | OSError | nats.errors.TimeoutError
                  | nats.errors.ConnectionClosedError | nats.errors.NoServersError
                  | nats.errors.NoRespondersError | nats.errors.StaleConnectionError
                  | nats.errors.OutboundBufferLimitError):
        return Unavailable(f"{what}: nats unreachable: {type(exc).__name__} {exc}")
    return Internal(f"{what}: nats: {type(exc).__name__} {exc}")


def durable_name(group: str, topic: str) -> str:
    """A consumer name NATS accepts (no ``.``, ``*``, ``>`` or spaces), stable per pair."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", f"{group}__{topic}")[:48]
    digest = hashlib.sha256(f"{group}\0{topic}".encode()).hexdigest()[:12]
    return f"{readable}_{digest}"


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
                    messages = await self.pull.fetch(batch=1, timeout=FETCH_WAIT)
            except (nats.errors.TimeoutError, TimeoutError):
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
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                async with asyncio.timeout(self.settings.timeout):
                    await connection.drain()
            except Exception:
                await connection.close()

    async def ping(self) -> None:
        if self.connection is None or not self.connection.is_connected:
            raise Unavailable(f"{self.what}: nats is not connected")

    def subject(self, topic: str) -> str:
        if not _TOKEN.match(topic):
            raise InvalidArgument(f"{self.what}: topic {topic!r} is not a NATS subject "
                                  "(no spaces, '*' or '>')")
        return f"{self.settings.stream_name}.{topic}"

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        subject = self.subject(topic)
        headers = {"Nats-Msg-Id": str(uuid.uuid4()),
                   "Pylotto-Metadata": json.dumps(dict(metadata))}
        if self.js is None:
            raise Unavailable(f"{self.what} is not open")
        try:
            async with asyncio.timeout(self.settings.timeout):
                await self.js.publish(subject, data, headers=headers,
                                      stream=self.settings.stream_name)
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        group = self.consumer_group(metadata)
        durable = durable_name(group, topic)
        config = ConsumerConfig(
            durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL, ack_wait=self.settings.ack_wait,
            max_deliver=-1, max_ack_pending=10_000, filter_subject=self.subject(topic))
        try:
            async with asyncio.timeout(self.settings.timeout):
                pull = await self.js.pull_subscribe(self.subject(topic), durable=durable,
                                                    stream=self.settings.stream_name,
                                                    config=config)
        except Exception as exc:
            raise map_error(exc, self.what) from exc
        subscription = _NatsSubscription(self, topic, group, handler, pull)
        subscription.start()
        return Registered(subscription, self._subscriptions)

