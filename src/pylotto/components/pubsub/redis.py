"""``redis``: pub/sub on Redis Streams with consumer groups (Dapr's ``pubsub.redis``).

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``poolSize``, ``timeout`` (see :mod:`pylotto.components.redis_client`), ``consumerID``,
``maxConcurrentHandlers`` and the ``backOff*`` keys of every pub/sub (see :mod:`.base`), plus:

- ``maxLenApprox``: trim each stream to about this many entries (``XADD MAXLEN ~``); default:
  never trim.
- ``processingTimeout`` (default ``60s``): a message delivered to a consumer and not
  acknowledged for this long — its sidecar died — is claimed by another consumer of the group.
- ``redeliverInterval`` (default ``15s``): how often each subscription looks for such messages.

Layout: one stream per topic (the topic name is the key), entries ``{data, metadata}``. A
subscription is a consumer (a unique name) of the stream's consumer group; the group is
created at the stream's beginning (``0``, as Dapr does), so a group that did not exist yet
still gets every message the stream holds. A message is acknowledged (``XACK``) only after the
handler returned; a failed one stays pending and is retried after the back-off, with its
idle time reset so no other consumer steals it meanwhile; ``attempt`` is Redis' delivery count.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from pydantic import Field

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
from pylotto.components.redis_client import RedisClient, RedisSettings
from pylotto.errors import PylottoError
from pylotto.metadata import Duration
from pylotto.types import Metadata

BLOCK_MS = 1000
"""How long one XREADGROUP waits for new entries before the loop looks around again."""


class RedisPubSubSettings(PubSubSettings, RedisSettings):
    max_len_approx: int | None = Field(None, alias="maxLenApprox", ge=1)
    processing_timeout: Duration = Field(60.0, alias="processingTimeout", gt=0)
    redeliver_interval: Duration = Field(15.0, alias="redeliverInterval", gt=0)


def _entry(data: bytes, metadata: Metadata) -> dict[str, Any]:
    return {"data": data, "metadata": json.dumps(dict(metadata))}


class _StreamSubscription(BrokerSubscription):
    def __init__(self, pubsub: RedisStreamsPubSub, topic: str, group: str,
                 handler: Handler) -> None:
        settings = pubsub.settings
        super().__init__(topic, handler, slots=settings.max_concurrent_handlers,
                         policy=settings.retry_policy(), logger=pubsub.context.logger,
                         where=f"pubsub {pubsub.name} topic {topic} group {group}")
        self.client = pubsub.client
        self.settings = settings
        self.group = group
        self.consumer = f"{group}-{uuid.uuid4().hex[:12]}"
        self._ready: deque[Delivery] = deque()
        self._last_claim = 0.0

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
        metadata = json.loads(fields.get(b"metadata") or b"{}")
        message = Message(self.topic, bytes(fields.get(b"data") or b""), metadata,
                          attempt=attempt)
        return Delivery(message, token=entry_id, failures=attempt - 1)

    async def receive(self) -> Delivery:
        while not self._ready:
            loop = asyncio.get_running_loop()
            if loop.time() - self._last_claim >= self.settings.redeliver_interval:
                self._last_claim = loop.time()
                await self._claim_abandoned()
                if self._ready:
                    break
            reply = await self.client.call(lambda r: r.xreadgroup(
                self.group, self.consumer, {self.topic: ">"}, count=1, block=BLOCK_MS))
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    self._ready.append(self._delivery(entry_id, fields, 1))
        return self._ready.popleft()

    async def _claim_abandoned(self) -> None:
        """Take over messages another consumer of the group left pending too long."""
        idle_ms = int(self.settings.processing_timeout * 1000)
        pending = await self.client.call(lambda r: r.xpending_range(
            self.topic, self.group, min="-", max="+", count=100, idle=idle_ms))
        for row in pending:
            claimed = await self._claim(row["message_id"], idle_ms)
            for entry_id, fields in claimed:
                if fields is not None:  # None: the entry was trimmed away
                    self._ready.append(self._delivery(
                        entry_id, fields, int(row["times_delivered"]) + 1))
                else:
                    await self._ack_id(entry_id)

    async def _claim(self, entry_id: bytes, idle_ms: int, **options: Any) -> Any:
        return await self.client.call(lambda r: r.xclaim(
            self.topic, self.group, self.consumer, idle_ms, [entry_id], **options))

    async def _ack_id(self, entry_id: bytes) -> None:
        await self.client.call(lambda r: r.xack(self.topic, self.group, entry_id))

    async def ack(self, delivery: Delivery) -> None:
        await self._ack_id(delivery.token)

    async def before_retry(self, delivery: Delivery) -> None:
        # reset the idle time, so that no other consumer claims it while we retry
        await self._claim(delivery.token, 0, justid=True)


class RedisStreamsPubSub(PubSub):
    Settings = RedisPubSubSettings
    settings: RedisPubSubSettings

    def __init__(self, name: str, settings: RedisPubSubSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = RedisClient(settings, f"pubsub {name}")
        self._subscriptions: set[_StreamSubscription] = set()

    async def init(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    def _xadd(self, r: Any, topic: str, data: bytes, metadata: Metadata) -> Any:
        limit = self.settings.max_len_approx
        return r.xadd(topic, _entry(data, metadata), maxlen=limit, approximate=True)

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        await self.client.call(lambda r: self._xadd(r, topic, data, metadata))

    async def bulk_publish(self, topic: str, entries: Sequence[BulkPublishEntry],
                           metadata: Metadata) -> list[BulkPublishFailure]:
        """Every entry in one pipelined round trip."""

        async def send(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for entry in entries:
                self._xadd(pipe, topic, entry.data, {**metadata, **entry.metadata})
            return list(await pipe.execute(raise_on_error=False))

        try:
            results = await self.client.call(send)
        except PylottoError as exc:
            return [BulkPublishFailure(e.entry_id, exc.message) for e in entries]
        return [BulkPublishFailure(e.entry_id, str(result))
                for e, result in zip(entries, results, strict=True)
                if isinstance(result, Exception)]

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        subscription = _StreamSubscription(self, topic, self.consumer_group(metadata), handler)
        await subscription.ensure_group()
        subscription.start()
        return Registered(subscription, self._subscriptions)

