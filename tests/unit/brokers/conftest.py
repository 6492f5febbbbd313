"""Shared by the broker tests: components built on private topics (a random name per test),
a recording handler, and :class:`BrokerContract`, the pub/sub contract every broker's test
module runs (it subclasses it with its ``backend`` fixture).

Every name a test creates on a server (streams, queues, exchanges, JetStream streams, consumer
groups) carries :data:`RUN`, and the session removes what carries it at the end. A broker that
is down fails its tests (never skips them).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.pubsub.base import Message, PubSub, Subscription
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.servers import SERVERS, require
from tests.support.tcp_proxy import TcpProxy

RUN = f"pylbrk{uuid.uuid4().hex[:8]}"
"""In every topic, group and stream name of this run (removed at the end of the session)."""
APP_ID = f"{RUN}-app"
WAIT = 15.0
FAST_RETRY = {"backOffPolicy": "constant", "backOffDuration": "100ms"}

Build = Callable[..., AbstractAsyncContextManager[PubSub]]


@dataclass(frozen=True)
class Backend:
    """How a test module reaches its broker."""

    type: str
    """The component type (registry name)."""
    server: str
    """The server's name in tests/support/servers.py."""
    metadata: dict[str, str]
    proxy_key: str
    """The metadata key that points the component at a server; ``proxy_value`` with
    ``{port}`` replaced sends it through a TcpProxy instead."""
    proxy_value: str
    traits: frozenset[str] = field(default_factory=frozenset)
    """``ordered``: one subscriber with one handler slot sees messages in publish order."""

    @property
    def port(self) -> int:
        return SERVERS[self.server]

    def via(self, proxy: TcpProxy) -> dict[str, str]:
        return {self.proxy_key: self.proxy_value.replace("{port}", str(proxy.port))}


@pytest.fixture
def topic() -> str:
    return f"{RUN}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def build(backend: Backend, tmp_path: Path) -> Build:
    """``async with build(**metadata) as broker``: an initialised component of the module's
    backend (fast constant back-off, 3s timeout), closed on exit. ``data_dir=`` and ``app_id=``
    override its context."""
    require(backend.server)

    @asynccontextmanager
    async def make(*, data_dir: Path | None = None, app_id: str = APP_ID,
                   **metadata: str) -> AsyncIterator[PubSub]:
        cls = resolve("pubsub", backend.type)
        values = {"timeout": "3s", **FAST_RETRY, **backend.metadata, **metadata}
        settings = decode(cls.Settings, values, component=f"pubsub.{backend.type}")
        component = cls(backend.type, settings, ComponentContext(
            app_id=app_id, data_dir=data_dir or tmp_path,
            logger=logging.getLogger(f"test.brokers.{backend.type}")))
        assert isinstance(component, PubSub)
        await component.init()
        try:
            yield component
        finally:
            await component.close()

    return make


@pytest.fixture(scope="session", autouse=True)
def _remove_run_data() -> Iterator[None]:
    yield
    from tests.support.cleanup import remove_run_data

    asyncio.run(remove_run_data(RUN))


async def eventually(check: Callable[[], bool], within: float = WAIT, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not met within {within}s: {what or check}"
        await asyncio.sleep(0.02)


async def once_back(call: Callable[[], Any], within: float = 20.0) -> None:
    """``await call()`` retried while it raises Unavailable (a broker just restored)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await call()
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


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


@asynccontextmanager
async def releasing(gate: asyncio.Event) -> AsyncIterator[asyncio.Event]:
    """Set ``gate`` on the way out, also when a check failed (closing a component waits for
    the handler calls the gate holds)."""
    try:
        yield gate
    finally:
        gate.set()


async def close_all(*subscriptions: Subscription) -> None:
    for subscription in subscriptions:
        await subscription.close()


@pytest.mark.timeout(90)
class BrokerContract:
    """The contract of :mod:`pylotto.components.pubsub.base`, against a real broker."""

    async def test_publish_then_subscribe(self, build: Build, backend: Backend,
                                          topic: str) -> None:
        async with build(maxConcurrentHandlers="1") as broker:
            inbox = Inbox()
            subscription = await broker.subscribe(topic, inbox, {})
            await broker.publish(topic, b"\x00first\xff", {"k": "v", "traceparent": "00-x"})
            sent = [b"\x00first\xff", *await publish_all(broker, topic, 9)]
            await eventually(lambda: len(inbox.messages) >= 10)
            await asyncio.sleep(0.3)
            if "ordered" in backend.traits:
                assert inbox.data() == sent
            else:
                assert sorted(inbox.data()) == sorted(sent)
            first = next(m for m in inbox.messages if m.data == b"\x00first\xff")
            assert first.topic == topic
            assert first.attempt == 1
            assert first.metadata == {"k": "v", "traceparent": "00-x"}
            await subscription.close()

    async def test_a_raising_handler_gets_the_message_again_with_attempt_2(
        self, build: Build, topic: str
    ) -> None:
        async with build() as broker:
            inbox = Inbox(fail=lambda m: m.attempt == 1)
            subscription = await broker.subscribe(topic, inbox, {})
            await broker.publish(topic, b"retry me", {"k": "v"})
            await eventually(lambda: len(inbox.messages) == 2)
            assert inbox.attempts(b"retry me") == [1, 2]
            assert inbox.messages[1].metadata == {"k": "v"}
            await asyncio.sleep(1.0)
            assert len(inbox.messages) == 2  # acknowledged after the success
            await subscription.close()

    async def test_gives_up_then_drops_the_message_for_good(self, build: Build,
                                                            topic: str) -> None:
        async with build(backOffMaxRetries="2") as broker:
            poisoned = Inbox(fail=lambda m: True)
            subscription = await broker.subscribe(topic, poisoned, {"consumerID": f"{RUN}-gu"})
            await broker.publish(topic, b"poison", {})
            await eventually(lambda: len(poisoned.messages) == 3)
            await asyncio.sleep(1.0)
            assert poisoned.attempts(b"poison") == [1, 2, 3]  # 2 retries, then dropped
            await subscription.close()
            # settled in the broker: the group's next subscriber does not get it again
            after = Inbox()
            again = await broker.subscribe(topic, after, {"consumerID": f"{RUN}-gu"})
            await broker.publish(topic, b"next", {})
            await eventually(lambda: len(after.messages) >= 1)
            await asyncio.sleep(0.5)
            assert after.data() == [b"next"]
            await again.close()

    async def test_members_of_a_group_share_its_messages(self, build: Build, topic: str,
                                                         tmp_path: Path) -> None:
        # two sidecars: distinct data directories (see the MQTT client ids)
        async with build(maxConcurrentHandlers="1", data_dir=tmp_path / "one") as one_broker, \
                build(maxConcurrentHandlers="1", data_dir=tmp_path / "two") as two_broker:
            one, two = Inbox(delay=0.05), Inbox(delay=0.05)
            group = {"consumerID": f"{RUN}-shared"}
            first = await one_broker.subscribe(topic, one, group)
            second = await two_broker.subscribe(topic, two, group)
            sent = await publish_all(one_broker, topic, 30)
            await eventually(lambda: len(one.messages) + len(two.messages) >= 30)
            await asyncio.sleep(0.5)
            assert sorted(one.data() + two.data()) == sorted(sent)  # each once in total
            assert one.messages and two.messages, "one member got every message"
            await close_all(first, second)

    async def test_every_group_gets_every_message(self, build: Build, topic: str) -> None:
        async with build() as broker:
            orders, billing = Inbox(), Inbox()
            first = await broker.subscribe(topic, orders, {"consumerID": f"{RUN}-orders"})
            second = await broker.subscribe(topic, billing, {"consumerID": f"{RUN}-billing"})
            sent = await publish_all(broker, topic, 10)
            await eventually(lambda: len(orders.messages) == 10 and len(billing.messages) == 10)
            await asyncio.sleep(0.3)
            assert sorted(orders.data()) == sorted(billing.data()) == sorted(sent)
            await close_all(first, second)

    async def test_handler_calls_in_flight_are_bounded(self, build: Build,
                                                       topic: str) -> None:
        async with build(maxConcurrentHandlers="3") as broker:
            # every third message fails once: retries must respect the bound too
            inbox = Inbox(delay=0.1, fail=lambda m: m.attempt == 1 and int(m.data[1:]) % 3 == 0)
            subscription = await broker.subscribe(topic, inbox, {})
            sent = await publish_all(broker, topic, 15)
            await eventually(lambda: len({*inbox.data()}) == 15 and inbox.running == 0)
            assert inbox.most_running == 3
            assert sorted({*inbox.data()}) == sorted(sent)
            await subscription.close()

    async def test_close_waits_for_handlers_in_flight_and_settles_them(
        self, build: Build, topic: str
    ) -> None:
        async with build() as broker:
            group = {"consumerID": f"{RUN}-closer"}
            slow = Inbox(delay=0.5)
            subscription = await broker.subscribe(topic, slow, group)
            await broker.publish(topic, b"in flight", {})
            await eventually(lambda: slow.running == 1)
            await subscription.close()
            assert slow.data() == [b"in flight"]  # finished before close returned
            after = Inbox()
            again = await broker.subscribe(topic, after, group)
            await broker.publish(topic, b"next", {})
            await eventually(lambda: len(after.messages) >= 1)
            await asyncio.sleep(0.5)
            assert after.data() == [b"next"]  # the finished one was acknowledged
            await again.close()

    async def test_a_group_keeps_what_is_published_while_nobody_listens(
        self, build: Build, topic: str
    ) -> None:
        async with build() as broker:
            group = {"consumerID": f"{RUN}-keeper"}
            first = Inbox()
            subscription = await broker.subscribe(topic, first, group)
            await broker.publish(topic, b"before", {})
            await eventually(lambda: len(first.messages) == 1)
            await subscription.close()
            sent = await publish_all(broker, topic, 3, prefix="while-away-")
        async with build() as restarted:  # a new component: nothing kept in the process
            later = Inbox()
            again = await restarted.subscribe(topic, later, group)
            await eventually(lambda: len(later.messages) == 3)
            await asyncio.sleep(0.3)
            assert sorted(later.data()) == sorted(sent)
            await again.close()

    async def test_outage_publish_unavailable_in_time_then_delivery_resumes(
        self, build: Build, backend: Backend, topic: str
    ) -> None:
        with TcpProxy("127.0.0.1", backend.port) as proxy:
            async with build() as direct, build(**backend.via(proxy)) as proxied:
                inbox = Inbox()
                subscription = await proxied.subscribe(topic, inbox, {})
                await proxied.publish(topic, b"before", {})
                await eventually(lambda: len(inbox.messages) == 1)
                await asyncio.sleep(0.3)  # its acknowledgement reached the broker
                proxy.cut()
                started = time.monotonic()
                with pytest.raises(Unavailable):
                    await proxied.publish(topic, b"during", {})
                assert time.monotonic() - started < 3 + 2, "publish must fail within timeout"
                with pytest.raises(Unavailable):
                    await proxied.ping()
                await direct.publish(topic, b"published elsewhere", {})
                await asyncio.sleep(0.5)
                assert inbox.data() == [b"before"]
                proxy.restore()
                await once_back(lambda: proxied.publish(topic, b"after", {}))
                await eventually(lambda: len(inbox.messages) >= 3, within=30)
                await asyncio.sleep(0.5)
                assert sorted(inbox.data()) == [b"after", b"before", b"published elsewhere"]
                await proxied.ping()
                await subscription.close()

    async def test_closing_while_the_broker_is_unreachable_returns_in_time(
        self, build: Build, backend: Backend, topic: str
    ) -> None:
        with TcpProxy("127.0.0.1", backend.port) as proxy:
            cut_away = build(**backend.via(proxy))
            broker = await cut_away.__aenter__()
            inbox = Inbox()
            await broker.subscribe(topic, inbox, {})
            await broker.publish(topic, b"x", {})
            await eventually(lambda: len(inbox.messages) == 1)
            proxy.cut()
            await asyncio.sleep(0.5)  # the client noticed, and tries to reconnect
            started = time.monotonic()
            await cut_away.__aexit__(None, None, None)  # closes the subscription too: no error
            assert time.monotonic() - started < 2 * 3 + 2

    async def test_unreachable_broker_fails_init_with_unavailable(
        self, build: Build, backend: Backend
    ) -> None:
        with TcpProxy("127.0.0.1", backend.port) as proxy:
            proxy.cut()
            started = time.monotonic()
            with pytest.raises(Unavailable):
                async with build(**backend.via(proxy)):
                    pass
            assert time.monotonic() - started < 3 + 2
