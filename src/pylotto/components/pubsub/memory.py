"""``in-memory``: topics and consumer groups inside the sidecar process (lost on restart).

A publish copies the message into the backlog of every consumer group of the topic; the
subscriptions of one group take messages from that backlog in turn, so the group's members
share them. A group outlives its subscriptions: messages published while it has none, and
messages a closing subscription had not finished, wait for its next subscriber (at most
``maxQueuedMessages``, oldest dropped first). A topic nobody ever subscribed to drops messages.
A nacked message returns to the front of its group's backlog after the back-off delay.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, replace

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.pubsub.base import (
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


class InMemoryPubSubSettings(PubSubSettings):
    max_queued_messages: int = Field(10_000, alias="maxQueuedMessages", ge=1)
    """Backlog bound per consumer group; beyond it the oldest message is dropped."""


@dataclass(eq=False)
class _Delivery:
    message: Message
    failures: int = 0
    first_failure: float | None = None


class _Group:
    """One consumer group of one topic: its backlog, redelivery timers and members."""

    def __init__(
        self, topic: str, name: str, limit: int, policy: RetryPolicy, log: logging.Logger
    ) -> None:
        self.topic = topic
        self.name = name
        self.subscriptions: set[_MemorySubscription] = set()
        self._limit = limit
        self._policy = policy
        self._log = log
        self._items: deque[_Delivery] = deque()
        self._ready = asyncio.Event()
        self._timers: dict[_Delivery, asyncio.TimerHandle] = {}
        self._evicted = 0

    @property
    def backlog(self) -> int:
        return len(self._items)

    def push(self, delivery: _Delivery, *, front: bool = False) -> None:
        if len(self._items) >= self._limit:
            self._items.popleft()
            self._evicted += 1
            level = logging.WARNING if self._evicted == 1 else logging.DEBUG
            self._log.log(
                level, "topic %s group %r: backlog full (%d), oldest message dropped (%d so far)",
                self.topic, self.name, self._limit, self._evicted,
            )
        if front:
            self._items.appendleft(delivery)
        else:
            self._items.append(delivery)
        self._ready.set()

    async def pop(self) -> _Delivery:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def nack(self, delivery: _Delivery, error: BaseException, *, closing: bool) -> None:
        """Redeliver later (after back-off), or at once when its subscription is closing."""
        if closing:
            self.push(delivery, front=True)
            return
        now = time.monotonic()
        delivery.failures += 1
        if delivery.first_failure is None:
            delivery.first_failure = now
        if self._policy.gives_up(delivery.failures, now - delivery.first_failure):
            self._log.error(
                "topic %s group %r: message dropped after %d failed deliveries: %s",
                self.topic, self.name, delivery.failures, error,
            )
            return
        delay = self._policy.delay(delivery.failures)
        self._log.debug(
            "topic %s group %r: redelivery %d in %.3fs: %s",
            self.topic, self.name, delivery.failures, delay, error,
        )
        loop = asyncio.get_running_loop()
        self._timers[delivery] = loop.call_later(delay, self._redeliver, delivery)

    def _redeliver(self, delivery: _Delivery) -> None:
        self._timers.pop(delivery, None)
        self.push(delivery, front=True)

    def clear(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._items.clear()


class _MemorySubscription(Subscription):
    def __init__(self, group: _Group, handler: Handler, slots: int) -> None:
        self.topic = group.topic
        self._group = group
        self._handler = handler
        self._slots = asyncio.Semaphore(slots)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._runner = asyncio.create_task(self._run(), name=f"pubsub-memory:{group.topic}")

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                delivery = await self._group.pop()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: _Delivery) -> None:
        try:
            await self._handler(replace(delivery.message, attempt=delivery.failures + 1))
        except asyncio.CancelledError:
            self._group.nack(delivery, asyncio.CancelledError(), closing=True)
            raise
        except Exception as exc:
            self._group.nack(delivery, exc, closing=self._closing)
        finally:
            self._slots.release()

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._runner.cancel()
        with suppress(asyncio.CancelledError):
            await self._runner
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self._group.subscriptions.discard(self)


class InMemoryPubSub(PubSub):
    """Embedded broker: consumer groups, back-pressure and redelivery, no persistence."""
    per_process = True

    Settings = InMemoryPubSubSettings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        assert isinstance(settings, InMemoryPubSubSettings)
        self._max_queued = settings.max_queued_messages
        self._topics: dict[str, dict[str, _Group]] = {}
        self._closed = False

    def groups(self, topic: str) -> dict[str, _Group]:
        """The consumer groups of ``topic`` (for tests and introspection)."""
        return dict(self._topics.get(topic, {}))

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        if self._closed:
            raise Unavailable(f"pubsub {self.name} is closed")
        groups = self._topics.get(topic)
        if not groups:
            self.context.logger.debug("topic %s has no subscriber: message dropped", topic)
            return
        message = Message(topic, bytes(data), dict(metadata))
        for group in groups.values():
            group.push(_Delivery(message))

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        if self._closed:
            raise Unavailable(f"pubsub {self.name} is closed")
        name = self.consumer_group(metadata)
        groups = self._topics.setdefault(topic, {})
        group = groups.get(name)
        if group is None:
            group = _Group(
                topic, name, self._max_queued, self.pubsub_settings.retry_policy(),
                self.context.logger,
            )
            groups[name] = group
        subscription = _MemorySubscription(
            group, handler, self.pubsub_settings.max_concurrent_handlers
        )
        group.subscriptions.add(subscription)
        return subscription

    async def close(self) -> None:
        self._closed = True
        groups = [group for by_name in self._topics.values() for group in by_name.values()]
        await asyncio.gather(
            *(sub.close() for group in groups for sub in list(group.subscriptions))
        )
        for group in groups:
            group.clear()
        self._topics.clear()
