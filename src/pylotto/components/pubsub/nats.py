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

Delivery: a subscription pulls messages only for its free ``maxConcurrentHandlers`` slots, with
one pull request outstanding at a time for as many messages as slots were free when it was
sent (at most 64), and hands each to a handler as it arrives; the next request goes out once
that one is satisfied or expired (``max_ack_pending``, which counts for the whole group, is not
used for that bound: set to ``maxConcurrentHandlers`` it would throttle a group of several
sidecars to one sidecar's worth). So a backlog comes in batches, not one request per message,
and nothing waits in the sidecar's queue but what a free slot was there for. A message is
acknowledged only after the handler returned; a failed one is
``nak``'d with the back-off delay and JetStream delivers it again, to any member (``attempt``
is its ``num_delivered``); one given up on is acknowledged (dropped with an error log). A
closing subscription naks what it has not finished or pulled and not started, so it is
delivered again at once.
Limitation: a handler call running longer than ``ackWait`` lets JetStream deliver the message
again meanwhile (handled twice): keep ``ackWait`` above the slowest handler call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import uuid
from typing import Any

from pydantic import Field, field_validator

from pylotto.components.base import ComponentContext
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
"""How long one pull request waits for messages on the server before it expires."""
STATUS_GRACE = 0.5
"""How long past that the subscription waits for the expired request's ``408``."""
PULL_BATCH = 64
"""Most messages one pull request asks for (and never more than the free handler slots)."""
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
    """Pulls for as many messages as the subscription has free handler slots (at most
    :data:`PULL_BATCH`), with one pull request outstanding at a time (module docstring).

    nats-py's ``fetch(batch=n)`` does not fit: it returns only once ``n`` messages came or its
    timeout passed (a trickle of messages would each wait up to the timeout), and each
    ``fetch(1)`` costs a request, a task and a ``uuid4``. So this reads the pull
    subscription's queue itself (``_sub._pending_queue``, as nats-py's own fetch does) and
    keeps the account of the outstanding request: ``_owed`` messages it may still deliver
    until ``_owed_until``; a status message (``404``, ``408``, ``409``...) or the expiry ends
    it.
    """

    batch_limit = PULL_BATCH

    def __init__(self, pubsub: NATSJetStreamPubSub, topic: str, group: str,
                 handler: Handler, pull: Any) -> None:
        settings = pubsub.settings
        super().__init__(topic, handler, slots=settings.max_concurrent_handlers,
                         policy=settings.retry_policy(), logger=pubsub.context.logger,
                         where=f"pubsub {pubsub.name} topic {topic} group {group}")
        self.pubsub = pubsub
        self.pull = pull
        self._owed = 0
        """Messages the outstanding pull request may still deliver (0: none outstanding)."""
        self._owed_until = 0.0
        """When it expires (loop time), plus the grace its 408 status may take to come."""

    async def receive_many(self, limit: int) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        while True:
            messages = self._take_queued(limit)
            if messages:
                return [self._delivery(msg) for msg in messages]
            if self._owed <= 0 or loop.time() >= self._owed_until:
                await self._request(limit, loop.time())
            first = await self._next(self._owed_until - loop.time())
            if first is not None:
                return [self._delivery(msg) for msg in [first, *self._take_queued(limit - 1)]]

    async def _request(self, batch: int, now: float) -> None:
        """Ask the consumer for up to ``batch`` messages, to this subscription's inbox."""
        request = json.dumps({"batch": batch, "expires": int(FETCH_WAIT * 1e9)}).encode()
        try:
            async with asyncio.timeout(self.pubsub.settings.timeout):
                await self.pull._nc.publish(self.pull._nms, request, self.pull._deliver)
        except Exception as exc:
            raise map_error(exc, self.where) from exc
        self._owed, self._owed_until = batch, now + FETCH_WAIT + STATUS_GRACE

    def _take_queued(self, limit: int) -> list[Any]:
        """Up to ``limit`` messages already in the inbox's queue (no waiting)."""
        queue = self.pull._sub._pending_queue
        taken: list[Any] = []
        while len(taken) < limit and not queue.empty():
            msg = self._processable(self._dequeued(queue.get_nowait()))
            if msg is not None:
                taken.append(msg)
        return taken

    async def _next(self, within: float) -> Any:
        """The next message of the inbox within ``within`` seconds; None when a status
        message or the expiry ended the request (or a heartbeat came) instead."""
        queue = self.pull._sub._pending_queue
        try:
            async with asyncio.timeout(max(within, 0.0)):
                msg = await queue.get()
        except TimeoutError:
            self._owed = 0
            connection = self.pubsub.connection
            if connection is None or not connection.is_connected:
                raise Unavailable(f"{self.where}: nats is not connected") from None
            return None
        return self._processable(self._dequeued(msg))

    def _dequeued(self, msg: Any) -> Any:
        """The bookkeeping nats-py's ``next_msg`` does for a message taken off the queue."""
        sub = self.pull._sub
        sub._pending_size -= len(msg.data)
        sub._pending_queue.task_done()
        return msg

    def _processable(self, msg: Any) -> Any:
        """``msg`` when it is a message; None for a status message that ends the request
        (``404`` no messages, ``408`` expired: the loop asks again) or, for a heartbeat
        (``100``), changes nothing. Any other status (``409``: the consumer deleted, a limit
        exceeded, a leadership change) ends it too, as Unavailable, so the loop backs off
        rather than asking again at once."""
        status = msg.headers.get("Status") if msg.headers else None
        if not status:
            self._owed -= 1
            return msg
        if status == "100":
            return None
        self._owed = 0
        if status in ("404", "408"):
            return None
        raise Unavailable(f"{self.where}: nats answered the pull with status {status} "
                          f"{msg.headers.get('Description', '')}".rstrip())

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
        # pulled and never handed to a handler: back to the group now, not after ackWait
        with contextlib.suppress(Exception):
            for msg in self._take_queued(self.pull._sub._pending_queue.qsize()):
                with contextlib.suppress(Exception):
                    await self._settle("nak", msg.nak())


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

