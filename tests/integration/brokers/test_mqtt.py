"""``mqtt`` pub/sub on a real broker (its contract: tests/conformance/pubsub; its settings:
tests/unit/brokers/): client ids (stable per sidecar, distinct per live subscription),
acknowledgement after the handler (a message whose handler had not finished
when the connection dropped comes again), payloads of other publishers, and clean sessions.

Every persistent session a test creates is removed afterwards (connecting with its client id
and a clean session)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.components.pubsub.base import Message
from pylotto.components.pubsub.mqtt import MQTTPubSub
from tests.integration.brokers.conftest import (
    RUN,
    Backend,
    Build,
    eventually,
)
from tests.support.inbox import Inbox
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture
def backend() -> Backend:
    return Backend(type="mqtt3", server="mqtt", metadata={"url": "tcp://127.0.0.1:1883"},
                   proxy_key="url", proxy_value="tcp://127.0.0.1:{port}")


@pytest.fixture(autouse=True)
async def _forget_sessions(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Record the client ids subscriptions use, and drop their sessions after the test."""
    used: set[str] = set()
    reserve = MQTTPubSub._reserve_client_id

    def recording(self: MQTTPubSub, topic: str, group: str) -> str:
        client_id = reserve(self, topic, group)
        used.add(client_id)
        return client_id

    monkeypatch.setattr(MQTTPubSub, "_reserve_client_id", recording)
    yield
    import aiomqtt

    for client_id in used:
        try:  # best effort: cleaning must not fail a test
            async with aiomqtt.Client("127.0.0.1", 1883, identifier=client_id,
                                      clean_session=True, timeout=5):
                pass
        except Exception as exc:
            logging.getLogger("tests.brokers").warning("session %s kept: %r", client_id, exc)


def client_id(subscription: Any) -> str:
    value: str = subscription._inner.client_id
    return value



@pytest.mark.timeout(60)
async def test_client_ids_are_stable_per_sidecar_and_distinct_per_live_subscription(
    build: Build, topic: str, tmp_path: Path
) -> None:
    group = {"consumerID": f"{RUN}-ids"}
    async with build() as broker:
        first = await broker.subscribe(topic, Inbox(), group)
        second = await broker.subscribe(topic, Inbox(), group)
        assert client_id(first) != client_id(second)
        rank0 = client_id(first)
        await first.close()
        third = await broker.subscribe(topic, Inbox(), group)
        assert client_id(third) == rank0  # the lowest free rank, not the live one's
        other_group = await broker.subscribe(topic, Inbox(), {"consumerID": f"{RUN}-other"})
        assert client_id(other_group) not in {rank0, client_id(second)}
        for subscription in (second, third, other_group):
            await subscription.close()
    async with build() as restarted:
        again = await restarted.subscribe(topic, Inbox(), group)
        assert client_id(again) == rank0  # the same sidecar restarted: the same session
        await again.close()
    async with build(data_dir=tmp_path / "elsewhere") as another_sidecar:
        elsewhere = await another_sidecar.subscribe(topic, Inbox(), group)
        assert client_id(elsewhere) != rank0
        await elsewhere.close()


@pytest.mark.timeout(90)
async def test_a_message_not_finished_when_the_connection_dropped_comes_again(
    build: Build, backend: Backend, topic: str
) -> None:
    gate = asyncio.Event()
    seen: list[Message] = []

    async def handler(message: Message) -> None:
        seen.append(message)
        if message.data == b"held" and len([m for m in seen if m.data == b"held"]) == 1:
            await gate.wait()  # the first delivery is still being handled...

    with TcpProxy("127.0.0.1", backend.port) as proxy:
        async with build() as publisher, build(**backend.via(proxy)) as broker:
            subscription = await broker.subscribe(topic, handler, {})
            try:
                await handled_again(publisher, proxy, topic, seen, gate)
            finally:
                gate.set()  # a failed check must not leave close waiting for the handler
            await subscription.close()


async def handled_again(publisher: Any, proxy: TcpProxy, topic: str, seen: list[Message],
                        gate: asyncio.Event) -> None:
    await publisher.publish(topic, b"done", {})
    await eventually(lambda: len(seen) == 1)
    await asyncio.sleep(0.3)  # its PUBACK is out
    await publisher.publish(topic, b"held", {"k": "v"})
    await eventually(lambda: len(seen) == 2)
    proxy.cut()  # ...when the connection drops: no PUBACK was sent
    await asyncio.sleep(0.5)
    proxy.restore()
    await eventually(lambda: len(seen) == 3, within=20)
    assert [m.data for m in seen] == [b"done", b"held", b"held"]
    assert seen[2].metadata == {"k": "v"}
    gate.set()
    await asyncio.sleep(1.0)
    assert len(seen) == 3  # "done" was acknowledged: not sent again


@pytest.mark.timeout(60)
async def test_a_payload_from_another_publisher_is_handed_over_as_it_is(
    build: Build, topic: str
) -> None:
    import aiomqtt

    async with build() as broker:
        inbox = Inbox()
        subscription = await broker.subscribe(topic, inbox, {})
        async with aiomqtt.Client("127.0.0.1", 1883, timeout=5) as foreign:
            await foreign.publish(topic, b'{"plain": "json"}', qos=1)
            await foreign.publish(topic, b"\xffnot json", qos=1)
        await eventually(lambda: len(inbox.messages) == 2)
        assert sorted(inbox.data()) == [b'{"plain": "json"}', b"\xffnot json"]
        assert all(m.metadata == {} for m in inbox.messages)
        await subscription.close()


@pytest.mark.timeout(60)
async def test_a_clean_session_keeps_nothing_while_closed(build: Build, topic: str) -> None:
    group = {"consumerID": f"{RUN}-clean"}
    async with build(cleanSession="true") as broker:
        first = Inbox()
        subscription = await broker.subscribe(topic, first, group)
        await subscription.close()
        await broker.publish(topic, b"lost", {})
        later = Inbox()
        again = await broker.subscribe(topic, later, group)
        await broker.publish(topic, b"seen", {})
        await eventually(lambda: len(later.messages) >= 1)
        await asyncio.sleep(0.5)
        assert later.data() == [b"seen"]
        await again.close()
