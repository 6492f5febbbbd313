"""``redis``: pub/sub on Redis Streams with consumer groups (Dapr's ``pubsub.redis``).

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``poolSize``, ``timeout`` (see :mod:`pylotto.components._backends.redis_client`; Sentinel,
Cluster and ``waitReplicas``, which publishes honour too:
:mod:`pylotto.components._backends.redis_topology`), ``consumerID``,
``maxConcurrentHandlers`` and the ``backOff*`` keys of every pub/sub (see :mod:`.base`), plus:

- ``maxLenApprox``: trim each stream to about this many entries (``XADD MAXLEN ~``); default:
  never trim.
- ``processingTimeout`` (default ``60s``): a message delivered to a consumer and not
  acknowledged for this long — its sidecar died — is claimed by another consumer of the group.
- ``redeliverInterval`` (default ``15s``): how often each subscription looks for such messages.
- ``concurrency``: Dapr's name for ``maxConcurrentHandlers`` (used when that key is not given).
- ``queueDepth``: accepted for Dapr component files, without effect: a subscription reads
  messages only for its free ``maxConcurrentHandlers`` slots (up to 64 in one ``XREADGROUP
  COUNT``), so nothing queues in the sidecar.

Layout: one stream per topic (the topic name is the key), entries ``{data, metadata}``
(metadata as a JSON object). A consumer group of the stream is a pylotto consumer group; each
subscription reads as one consumer of it (``XREADGROUP``), named after the group, the host, the
app, the sidecar's data directory and the subscription's rank among those of the same topic
and group in the sidecar — stable across restarts, so consumers do not pile up in the group.
The group is created with ``MKSTREAM`` at id ``0`` (as Dapr does): a group created before the
first publish gets every message, and a group created later also gets the messages the stream
still holds (``maxLenApprox`` bounds that history). If the stream or group disappears (deleted,
server restarted without persistence) the subscription creates it again.

Delivery: a message is acknowledged (``XACK``) only after the handler returned. A failed one
stays pending and is handed to the handler again after the back-off; before each retry its
idle time is reset and its delivery count set (``XCLAIM ... JUSTID RETRYCOUNT``), so Redis'
delivery count is the number of attempts. ``attempt`` is that count. Messages left pending by a
consumer that went away (its sidecar died) are taken over after ``processingTimeout`` by the
next scan (every ``redeliverInterval``) of any member: ``XPENDING ... IDLE`` then ``XCLAIM``,
one message per scan step (``XAUTOCLAIM`` does the same in one call but does not report the
delivery count, which ``attempt`` needs; and claiming one at a time never leaves claimed
messages idling in the sidecar where another member could claim them again). A subscription
closing hands the messages it did not finish back at once (their idle time set to
``processingTimeout``), so the next scan of any member takes them.

Needs Redis 6.2 or later (``XPENDING ... IDLE``). Each subscription's blocking read
(``XREADGROUP ... BLOCK 1000``, up to 64 entries, as many as it has free handler slots)
borrows a connection of the component's pool for up to a second: give ``poolSize`` more
connections than the component has subscriptions. Publishes (``XADD``) and acknowledgements
(``XACK``) go over one more connection, shared and pipelined
(:mod:`pylotto.components._backends.redis_pipelined`; a cluster's client with ``redisType:
cluster``).

Limitation (as in Dapr): a handler call running longer than ``processingTimeout``, or a
back-off longer than it, lets another member (or the next scan of the same one) claim the
message meanwhile, so it may be handled twice: keep ``processingTimeout`` above the slowest
handler call and above ``backOffMaxInterval`` (plus its randomization).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import Sequence
from typing import Any

from pydantic import Field, model_validator

from pylotto.components._backends.redis_client import RedisClient, RedisSettings
from pylotto.components._backends.redis_topology import request_client
from pylotto.components.base import ComponentContext
from pylotto.components.pubsub.base import (
    BulkPublishEntry,
    BulkPublishFailure,
    Handler,
    Message,
    PubSub,
    PubSubSettings,
    Subscription,
)
from pylotto.components.pubsub.delivery import BrokerSubscription, Delivery, Registered
from pylotto.core.errors import Internal, PylottoError
from pylotto.core.metadata import Duration
from pylotto.core.types import Metadata

BLOCK_MS = 1000
"""How long one XREADGROUP waits for new entries before the loop looks around again."""
READ_BATCH = 64
"""Most entries one XREADGROUP reads (never more than the subscription's free handler slots)."""


class RedisPubSubSettings(PubSubSettings, RedisSettings):
    max_len_approx: int | None = Field(None, alias="maxLenApprox", ge=1)
    processing_timeout: Duration = Field(60.0, alias="processingTimeout", gt=0)
    redeliver_interval: Duration = Field(15.0, alias="redeliverInterval", gt=0)
    concurrency: int | None = Field(None, alias="concurrency", ge=1)
    queue_depth: int | None = Field(None, alias="queueDepth", ge=1)

    @model_validator(mode="before")
    @classmethod
    def _concurrency(cls, data: Any) -> Any:
        """Dapr's ``concurrency`` stands for ``maxConcurrentHandlers`` when that is absent."""
        if not isinstance(data, dict):
            return data
        by_lower = {str(key).lower(): key for key in data}
        given = by_lower.get("concurrency")
        if given is not None and not {"maxconcurrenthandlers",
                                      "max_concurrent_handlers"} & by_lower.keys():
            return {**data, "max_concurrent_handlers": data[given]}
        return data


def _entry(data: bytes, metadata: Metadata) -> dict[str, Any]:
    return {"data": data, "metadata": json.dumps(dict(metadata))}


class _StreamSubscription(BrokerSubscription):
    batch_limit = READ_BATCH

    def __init__(self, pubsub: RedisStreamsPubSub, topic: str, group: str,
                 handler: Handler, consumer: str) -> None:
        settings = pubsub.settings
        super().__init__(topic, handler, slots=settings.max_concurrent_handlers,
                         policy=settings.retry_policy(), logger=pubsub.context.logger,
                         where=f"pubsub {pubsub.name} topic {topic} group {group}")
        self.client = pubsub.client
        self.requests = pubsub.requests
        self.settings = settings
        self.group = group
        self.consumer = consumer
        self._idle_ms = int(settings.processing_timeout * 1000)
        self._next_scan = 0.0

    async def ensure_group(self) -> None:
        import redis.exceptions

        async def create(r: Any) -> None:
            try:
                await r.xgroup_create(self.topic, self.group, id="0", mkstream=True)
            except redis.exceptions.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

        await self.client.call(create)

    def _delivery(self, entry_id: bytes, fields: dict[bytes, bytes], attempt: int) -> Delivery:
        try:
            metadata = json.loads(fields.get(b"metadata") or b"{}")
        except ValueError:  # an entry some other program wrote
            metadata = {}
        message = Message(self.topic, bytes(fields.get(b"data") or b""),
                          {str(k): str(v) for k, v in dict(metadata).items()}, attempt=attempt)
        return Delivery(message, token=entry_id, failures=attempt - 1)

    async def receive_many(self, limit: int) -> list[Delivery]:
        """Up to ``limit`` new entries in one ``XREADGROUP COUNT``, as many as the
        subscription has free handler slots: each is handed to a handler at once, none waits
        in the sidecar (until acknowledged they stay pending in the group, as one read alone)."""
        while True:
            try:
                deliveries = await self._next(limit)
            except Internal as exc:
                if "NOGROUP" not in exc.message:
                    raise
                self.log.warning("%s: the stream or its group is gone; creating it again",
                                 self.where)
                await self.ensure_group()
                continue
            if deliveries:
                return deliveries

    async def _next(self, limit: int) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_scan:
            claimed = await self._claim_abandoned()
            if claimed is not None:
                return [claimed]  # look again at once: there may be more
            self._next_scan = loop.time() + self.settings.redeliver_interval
        reply = await self.client.call(lambda r: self._read_new(r, limit))
        return [self._delivery(entry_id, fields, 1)
                for _, entries in reply or [] for entry_id, fields in entries]

    async def _read_new(self, r: Any, limit: int) -> Any:
        if not self.client.clustered:
            return await r.xreadgroup(self.group, self.consumer, {self.topic: ">"},
                                      count=limit, block=BLOCK_MS)
        # sent to the stream's master directly: redis-py would otherwise ask its default node
        # where XREADGROUP's key is (COMMAND GETKEYS) on every call, and never ask another
        # after that node died (with retries off it does not reload on that error). After a
        # failed call redis-py reads the slot map again only when the next command starts:
        # read it first, so the target is the master of the map after a failover, not of the
        # one before it
        await r.initialize()
        return await r.execute_command(
            "XREADGROUP", "GROUP", self.group, self.consumer, "COUNT", limit, "BLOCK",
            BLOCK_MS, "STREAMS", self.topic, ">", target_nodes=r.get_node_from_key(self.topic))

    async def _claim_abandoned(self) -> Delivery | None:
        """Take over one message of the group left pending longer than processingTimeout."""
        while True:
            pending = await self.client.call(lambda r: r.xpending_range(
                self.topic, self.group, min="-", max="+", count=1, idle=self._idle_ms))
            if not pending:
                return None
            entry, delivered = pending[0]["message_id"], int(pending[0]["times_delivered"])
            claimed = await self._claim(entry)
            for entry_id, fields in claimed:
                if fields is not None:
                    return self._delivery(entry_id, fields, delivered + 1)
                await self._ack_id(entry_id)  # trimmed away (Redis < 7 still lists it)
            # someone else claimed it first, or it was trimmed: look again

    async def _claim(self, entry_id: bytes) -> Any:
        return await self.client.call(lambda r: r.xclaim(
            self.topic, self.group, self.consumer, self._idle_ms, [entry_id]))

    async def _ack_id(self, entry_id: bytes) -> None:
        await self.requests.execute("XACK", self.topic, self.group, entry_id)

    async def ack(self, delivery: Delivery) -> None:
        await self._ack_id(delivery.token)

    async def before_retry(self, delivery: Delivery) -> None:
        # ours again (idle time 0, so no other member claims it while the handler runs), and
        # Redis counts this delivery
        await self.client.call(lambda r: r.xclaim(
            self.topic, self.group, self.consumer, 0, [delivery.token], justid=True,
            retrycount=delivery.failures + 1))

    async def release(self, delivery: Delivery) -> None:
        # claimable by the next scan of any member at once (not after processingTimeout)
        await self.client.call(lambda r: r.xclaim(
            self.topic, self.group, self.consumer, 0, [delivery.token], justid=True,
            idle=self._idle_ms))


class RedisStreamsPubSub(PubSub):
    Settings = RedisPubSubSettings
    settings: RedisPubSubSettings

    def __init__(self, name: str, settings: RedisPubSubSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = RedisClient(settings, f"pubsub {name}")
        """Blocking reads (XREADGROUP BLOCK), group and claim commands: redis-py."""
        self.requests = request_client(settings, f"pubsub {name}")
        """Publishes and acknowledgements: the pipelined client of the state stores (one
        shared connection, the commands of an event-loop turn written together)."""
        self._subscriptions: set[_StreamSubscription] = set()
        self._consumers: set[str] = set()
        """Consumer names of the live subscriptions (and those being set up)."""

    async def init(self) -> None:
        await self.client.open()
        await self.requests.open()

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        await self.client.close()
        await self.requests.close()

    async def ping(self) -> None:
        await self.client.ping()

    def _xadd(self, r: Any, topic: str, data: bytes, metadata: Metadata) -> Any:
        limit = self.settings.max_len_approx
        return r.xadd(topic, _entry(data, metadata), maxlen=limit, approximate=True)

    def _xadd_command(self, topic: str, data: bytes, metadata: Metadata) -> list[Any]:
        limit = self.settings.max_len_approx
        trim = ["MAXLEN", "~", limit] if limit is not None else []
        return ["XADD", topic, *trim, "*", *(x for kv in _entry(data, metadata).items()
                                             for x in kv)]

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        await self.requests.execute(*self._xadd_command(topic, data, metadata), write=True)

    async def bulk_publish(self, topic: str, entries: Sequence[BulkPublishEntry],
                           metadata: Metadata) -> list[BulkPublishFailure]:
        """Every entry in one pipelined round trip."""

        async def send(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for entry in entries:
                self._xadd(pipe, topic, entry.data, {**metadata, **entry.metadata})
            return list(await pipe.execute(raise_on_error=False))

        try:
            if self.settings.wait_replicas:
                results = await self.client.write(topic, [
                    self._xadd_command(topic, e.data, {**metadata, **e.metadata})
                    for e in entries])
            else:
                results = await self.client.call(send)
        except PylottoError as exc:
            return [BulkPublishFailure(e.entry_id, exc.message) for e in entries]
        return [BulkPublishFailure(e.entry_id, str(result))
                for e, result in zip(entries, results, strict=True)
                if isinstance(result, Exception)]

    def _reserve_consumer(self, topic: str, group: str) -> str:
        """A consumer name for a new subscription to ``topic`` in ``group``: the lowest rank
        no live subscription of this sidecar uses (so a restart reuses the same names)."""
        seed = (f"{socket.gethostname()}\0{self.context.app_id}\0{self.context.data_dir}"
                f"\0{topic}")
        base = f"{group}-{hashlib.sha256(seed.encode()).hexdigest()[:12]}"
        rank = 0
        while f"{base}-{rank}" in self._consumers:
            rank += 1
        name = f"{base}-{rank}"
        self._consumers.add(name)
        return name

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        group = self.consumer_group(metadata)
        consumer = self._reserve_consumer(topic, group)
        subscription = _StreamSubscription(self, topic, group, handler, consumer)
        try:
            await subscription.ensure_group()
        except BaseException:
            self._consumers.discard(consumer)
            raise
        subscription.start()
        return _RedisRegistered(subscription, self._subscriptions, self._consumers)


class _RedisRegistered(Registered):
    """Closing also frees the subscription's consumer name."""

    def __init__(self, inner: _StreamSubscription, registry: set[Any], names: set[str]) -> None:
        super().__init__(inner, registry)
        self._consumer = inner.consumer
        self._names = names

    async def close(self) -> None:
        await super().close()
        self._names.discard(self._consumer)
