"""``in-memory``: topics and consumer groups inside the sidecar process (lost on restart).

A publish copies the message into the backlog of every consumer group of the topic; the
subscriptions of one group take messages from that backlog in turn, so the group's members
share them. A group outlives its subscriptions: messages published while it has none, and
messages a closing subscription had not finished, wait for its next subscriber (at most
``maxQueuedMessages``, oldest dropped first). A topic nobody ever subscribed to drops messages.
At most ``maxIdleGroups`` groups without a subscriber are kept (default 1,000): beyond, the one
idle longest is dropped with its backlog (logged when it held messages), so subscribers that
come and go on ever new topics (a streaming subscription per request) do not grow the
process without bound. Dapr's in-memory broker keeps no idle group at all.
A nacked message returns to the front of its group's backlog after the back-off delay.

The delivery loop — in-flight bound, back-off, give-up, a close that waits — is every broker's
:class:`~pylotto.components.pubsub.delivery.BrokerSubscription`; the group is the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable

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
from pylotto.components.pubsub.delivery import BrokerSubscription, Delivery
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata


class InMemoryPubSubSettings(PubSubSettings):
    max_queued_messages: int = Field(10_000, alias="maxQueuedMessages", ge=1)
    """Backlog bound per consumer group; beyond it the oldest message is dropped."""
    max_idle_groups: int = Field(1_000, alias="maxIdleGroups", ge=0)
    """Groups without a subscriber kept for their next one; beyond, the one idle longest goes."""


class _Group:
    """One consumer group of one topic: its backlog, redelivery timers and members."""

    def __init__(self, topic: str, name: str, limit: int, log: logging.Logger,
                 on_idle: Callable[[_Group], None]) -> None:
        self.topic = topic
        self.name = name
        self.subscriptions: set[_MemorySubscription] = set()
        self.on_idle = on_idle
        """Called when the last subscription leaves."""
        self._limit = limit
        self._log = log
        self._items: deque[Delivery] = deque()
        self._ready = asyncio.Event()
        self._timers: dict[Delivery, asyncio.TimerHandle] = {}
        self._evicted = 0

    @property
    def backlog(self) -> int:
        return len(self._items)

    @property
    def held(self) -> int:
        """Messages the group holds: its backlog and those waiting out a back-off."""
        return len(self._items) + len(self._timers)

    def push(self, delivery: Delivery, *, front: bool = False) -> None:
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

    async def pop(self) -> Delivery:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def push_later(self, delivery: Delivery, delay: float) -> None:
        """Put ``delivery`` back at the front of the backlog after ``delay`` seconds."""
        loop = asyncio.get_running_loop()
        self._timers[delivery] = loop.call_later(delay, self._redeliver, delivery)

    def _redeliver(self, delivery: Delivery) -> None:
        self._timers.pop(delivery, None)
        self.push(delivery, front=True)

    def clear(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._items.clear()


class _MemorySubscription(BrokerSubscription):
    """A member of a group: the broker is the group's backlog. A refused message waits out
    its back-off in the group (freeing the slot, reaching whichever member is free then); one
    a closing member had not finished goes back to the front of the backlog."""

    def __init__(self, group: _Group, handler: Handler, slots: int, policy: RetryPolicy,
                 logger: logging.Logger) -> None:
        super().__init__(group.topic, handler, slots=slots, policy=policy, logger=logger,
                         where=f"topic {group.topic} group {group.name!r}")
        self._group = group

    async def receive(self) -> Delivery:
        return await self._group.pop()

    async def ack(self, delivery: Delivery) -> None:
        """Nothing to settle: a popped message is gone from the backlog."""

    async def release(self, delivery: Delivery) -> None:
        self._group.push(delivery, front=True)

    async def redeliver_later(self, delivery: Delivery, delay: float) -> bool:
        self._group.push_later(delivery, delay)
        return True

    async def stop_receiving(self) -> None:
        group = self._group
        if self in group.subscriptions:
            group.subscriptions.discard(self)
            if not group.subscriptions:
                group.on_idle(group)


class InMemoryPubSub(PubSub):
    """Embedded broker: consumer groups, back-pressure and redelivery, no persistence."""
    per_process = True

    Settings = InMemoryPubSubSettings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        assert isinstance(settings, InMemoryPubSubSettings)
        self._max_queued = settings.max_queued_messages
        self._max_idle = settings.max_idle_groups
        self._topics: dict[str, dict[str, _Group]] = {}
        self._idle: OrderedDict[tuple[str, str], _Group] = OrderedDict()
        """Groups without a subscription, the one idle longest first."""
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
            group.push(Delivery(message))

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        if self._closed:
            raise Unavailable(f"pubsub {self.name} is closed")
        name = self.consumer_group(metadata)
        groups = self._topics.setdefault(topic, {})
        group = groups.get(name)
        if group is None:
            group = _Group(topic, name, self._max_queued, self.context.logger, self._became_idle)
            groups[name] = group
        self._idle.pop((topic, name), None)
        settings = self.pubsub_settings
        subscription = _MemorySubscription(group, handler, settings.max_concurrent_handlers,
                                           settings.retry_policy(), self.context.logger)
        group.subscriptions.add(subscription)
        subscription.start()
        return subscription

    def _became_idle(self, group: _Group) -> None:
        if self._closed or self._topics.get(group.topic, {}).get(group.name) is not group:
            return
        self._idle[(group.topic, group.name)] = group
        while len(self._idle) > self._max_idle:
            (topic, name), oldest = self._idle.popitem(last=False)
            lost = oldest.held
            oldest.clear()
            groups = self._topics[topic]
            del groups[name]
            if not groups:
                del self._topics[topic]
            if lost:
                self.context.logger.warning(
                    "pubsub %s: topic %s group %r dropped after %d idle groups (maxIdleGroups) "
                    "with %d message(s) nobody came back for", self.name, topic, name,
                    self._max_idle, lost)

    async def close(self) -> None:
        self._closed = True
        groups = [group for by_name in self._topics.values() for group in by_name.values()]
        await asyncio.gather(
            *(sub.close() for group in groups for sub in list(group.subscriptions))
        )
        for group in groups:
            group.clear()
        self._topics.clear()
        self._idle.clear()
