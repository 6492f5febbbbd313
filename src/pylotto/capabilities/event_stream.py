"""A subscriber stream (Layotto's SubscribeTopicEvents): events handed to the app over its own
stream, each waiting for the verdict the app sends back; :class:`Nack`, the refusal that makes
the broker deliver an event again."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

from pylotto.appchannel.base import DeliveryStatus, TopicEvent
from pylotto.components.pubsub.base import Subscription
from pylotto.observability.throttled import ThrottledLog

log = logging.getLogger("pylotto.pubsub")
_mistakes = ThrottledLog(log)
"""A subscriber's mistake: one warning per kind and interval."""


class Nack(Exception):
    """Raised by a delivery handler to have the broker redeliver the message."""


Deliver = Callable[[TopicEvent], Awaitable[DeliveryStatus]]


class EventStream:
    """One subscriber stream: events go out through :meth:`events`, verdicts come back
    through :meth:`ack`. Closing it ends the component subscription; events not yet
    answered are redelivered (to another subscriber of the group, or later)."""

    def __init__(self, pubsub_name: str, topic: str) -> None:
        self.pubsub_name = pubsub_name
        self.topic = topic
        self.subscription: Subscription | None = None
        self._outbox: asyncio.Queue[TopicEvent | None] = asyncio.Queue()
        self._pending: dict[str, deque[asyncio.Future[DeliveryStatus]]] = {}
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self.on_close: Callable[[EventStream], None] | None = None

    @property
    def in_flight(self) -> int:
        """Events sent (or queued to send) and not answered yet."""
        return sum(len(waiting) for waiting in self._pending.values())

    async def deliver(self, event: TopicEvent) -> DeliveryStatus:
        """Queue ``event`` for the subscriber and wait for its verdict."""
        if self._closed:
            raise Nack(f"subscriber stream for topic {self.topic} is closed")
        future: asyncio.Future[DeliveryStatus] = asyncio.get_running_loop().create_future()
        waiting = self._pending.setdefault(event.id, deque())
        waiting.append(future)
        self._outbox.put_nowait(event)
        try:
            return await future
        finally:
            if future in waiting:
                waiting.remove(future)
            if not waiting and self._pending.get(event.id) is waiting:
                del self._pending[event.id]

    def ack(self, event_id: str, status: DeliveryStatus | int) -> None:
        """The subscriber's verdict on ``event_id``; an unknown status means RETRY."""
        verdict = DeliveryStatus.from_code(status)
        if verdict is None:
            _mistakes.warning(
                "unknown status", "topic %s: unknown status %s for event %s: redelivering",
                self.topic, status, event_id,
            )
            verdict = DeliveryStatus.RETRY
        waiting = self._pending.get(event_id)
        future = next((f for f in waiting or () if not f.done()), None)
        if future is None:
            _mistakes.warning("verdict for unknown event",
                              "topic %s: verdict for unknown event %r ignored", self.topic,
                              event_id)
            return
        future.set_result(verdict)

    async def events(self) -> AsyncIterator[TopicEvent]:
        """The events to send, until the stream closes."""
        while True:
            event = await self._outbox.get()
            if event is None:
                return
            yield event

    async def close(self, drain: float = 0.0) -> None:
        """Unsubscribe. ``drain`` > 0: first let the subscriber answer the events it holds
        for up to ``drain`` seconds. Safe to call more than once."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(drain))
        await asyncio.shield(self._closing)

    async def _close(self, drain: float) -> None:
        unsubscribing = (
            asyncio.ensure_future(self.subscription.close()) if self.subscription else None
        )
        if unsubscribing is not None and drain > 0:
            await asyncio.wait({unsubscribing}, timeout=drain)
        else:
            await asyncio.sleep(0)  # let the subscription mark itself closing first
        self._closed = True
        for waiting in self._pending.values():
            for future in waiting:
                if not future.done():
                    future.set_exception(Nack("subscriber stream closed"))
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._outbox.put_nowait(None)
        if unsubscribing is not None:
            await unsubscribing
        if self.on_close is not None:
            self.on_close(self)
