"""A recording pub/sub handler and a publishing helper, shared by the broker integration tests
and the pub/sub conformance suite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pylotto.components.pubsub.base import Message, PubSub


class Inbox:
    """A handler recording what it is given. ``fail(message)`` says which deliveries raise;
    ``delay`` makes each call last; ``gate``, when given, holds every call until it is set."""

    def __init__(self, fail: Callable[[Message], bool] = lambda m: False, delay: float = 0.0,
                 gate: asyncio.Event | None = None) -> None:
        self.messages: list[Message] = []
        self.fail = fail
        self.delay = delay
        self.gate = gate
        self.running = 0
        self.most_running = 0
        self.started = 0

    async def __call__(self, message: Message) -> None:
        self.running += 1
        self.started += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            self.messages.append(message)
            if self.fail(message):
                raise RuntimeError(f"handler refused attempt {message.attempt}")
        finally:
            self.running -= 1

    def data(self) -> list[bytes]:
        return [m.data for m in self.messages]

    def attempts(self, data: bytes) -> list[int]:
        return [m.attempt for m in self.messages if m.data == data]


async def publish_all(broker: PubSub, topic: str, count: int, prefix: str = "m") -> list[bytes]:
    sent = [f"{prefix}{n}".encode() for n in range(count)]
    for data in sent:
        await broker.publish(topic, data, {})
    return sent
