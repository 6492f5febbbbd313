"""``nats`` / ``jetstream`` pub/sub on a real broker (its contract:
tests/conformance/pubsub; its settings: tests/unit/brokers/): the stream and consumer layout, the
consumer settings applied again at each subscribe, pulls batched to the free handler slots,
``maxDeliver``, topics that are no NATS
subject, and a message whose sidecar died delivered again after ``ackWait`` with
``num_delivered`` as ``attempt``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pylotto.components.pubsub.nats import durable_name
from pylotto.core.errors import InvalidArgument, Unavailable
from tests.integration.brokers.conftest import (
    APP_ID,
    RUN,
    Backend,
    Build,
    eventually,
    releasing,
)
from tests.support.inbox import Inbox
from tests.support.tcp_proxy import TcpProxy

STREAM = RUN
"""One stream for the run's tests (removed at the end of the session)."""


@pytest.fixture
def backend() -> Backend:
    return Backend(type="jetstream", server="nats",
                   metadata={"natsURL": "nats://127.0.0.1:4222", "streamName": STREAM,
                             "ackWait": "5s"},
                   proxy_key="natsURL", proxy_value="nats://127.0.0.1:{port}",
                   traits=frozenset({"ordered"}))


@pytest.fixture
async def js() -> AsyncIterator[Any]:
    """A plain nats-py JetStream context on the same server."""
    import nats

    connection = await nats.connect("nats://127.0.0.1:4222", connect_timeout=5,
                                    max_reconnect_attempts=0)
    yield connection.jetstream(timeout=5)
    await connection.close()



async def test_a_topic_that_is_no_subject_is_refused(build: Build) -> None:
    async with build() as broker:
        for topic in ("has space", "wild.*", "tail.>", "a..b", ".a", "a."):
            with pytest.raises(InvalidArgument, match="NATS subject"):
                await broker.publish(topic, b"x", {})
            with pytest.raises(InvalidArgument):
                await broker.subscribe(topic, Inbox(), {})
        await broker.publish("dotted.topic.ok", b"x", {})


@pytest.mark.timeout(60)
async def test_stream_and_consumer_layout(build: Build, topic: str, js: Any) -> None:
    from nats.js.api import AckPolicy

    async with build(durableName="pfx", maxDeliver="7", maxAckPending="50",
                     ackWait="4s") as broker:
        inbox = Inbox()
        subscription = await broker.subscribe(topic, inbox, {})
        await broker.publish(topic, b"payload", {"k": "v"})
        await eventually(lambda: len(inbox.messages) == 1)
        stream = await js.stream_info(STREAM)
        assert stream.config.subjects == [f"{STREAM}.>"]
        stored = await js.get_last_msg(STREAM, f"{STREAM}.{topic}")
        assert stored.data == b"payload"
        assert stored.headers["Nats-Msg-Id"]
        assert json.loads(stored.headers["Pylotto-Metadata"]) == {"k": "v"}
        name = durable_name(APP_ID, topic, "pfx")
        consumer = await js.consumer_info(STREAM, name)
        config = consumer.config
        assert config.durable_name == name and name.startswith("pfx_")
        assert config.ack_policy == AckPolicy.EXPLICIT
        assert config.filter_subject == f"{STREAM}.{topic}"
        assert (config.ack_wait, config.max_deliver, config.max_ack_pending) == (4.0, 7, 50)
        await asyncio.sleep(0.3)
        consumer = await js.consumer_info(STREAM, name)
        assert consumer.num_ack_pending == 0  # acknowledged
        await subscription.close()


@pytest.mark.timeout(60)
async def test_consumer_settings_are_applied_again_at_each_subscribe(
    build: Build, topic: str, js: Any
) -> None:
    group = {"consumerID": f"{RUN}-update"}
    name = durable_name(group["consumerID"], topic)
    async with build() as broker:
        subscription = await broker.subscribe(topic, Inbox(), group)
        await subscription.close()
    assert (await js.consumer_info(STREAM, name)).config.max_deliver == -1
    async with build(maxDeliver="3", ackWait="2s") as changed:
        subscription = await changed.subscribe(topic, Inbox(), group)
        config = (await js.consumer_info(STREAM, name)).config
        assert (config.max_deliver, config.ack_wait) == (3, 2.0)
        await subscription.close()


@pytest.mark.timeout(60)
async def test_a_backlog_is_pulled_in_batches_of_the_free_handler_slots(
    build: Build, topic: str
) -> None:
    gate = asyncio.Event()
    async with build(maxConcurrentHandlers="8") as broker, releasing(gate):
        for index in range(40):
            await broker.publish(topic, b"%d" % index, {})
        connection = broker.connection
        publish = connection.publish
        batches: list[int] = []

        async def counting(subject: str, payload: bytes = b"", *args: Any, **kw: Any) -> Any:
            if ".CONSUMER.MSG.NEXT." in subject:
                batches.append(json.loads(payload)["batch"])
            return await publish(subject, payload, *args, **kw)

        connection.publish = counting
        held = Inbox(gate=gate)
        subscription = await broker.subscribe(topic, held, {})
        await eventually(lambda: held.running == 8)
        await asyncio.sleep(0.3)
        # one request for the eight free slots; nothing pulled beyond them while they are busy
        assert batches == [8]
        assert held.started == 8
        gate.set()
        await eventually(lambda: len(held.messages) == 40)
        assert sorted(int(m.data) for m in held.messages) == list(range(40))
        assert all(1 <= batch <= 8 for batch in batches)
        assert len(batches) < 20, batches  # one request per message would be 40
        await subscription.close()


@pytest.mark.timeout(60)
async def test_max_deliver_stops_jetstream_delivering(build: Build, topic: str) -> None:
    async with build(maxDeliver="2") as broker:
        failing = Inbox(fail=lambda m: True)
        subscription = await broker.subscribe(topic, failing, {"consumerID": f"{RUN}-md"})
        await broker.publish(topic, b"twice at most", {})
        await eventually(lambda: len(failing.messages) == 2)
        await asyncio.sleep(1.0)
        assert failing.attempts(b"twice at most") == [1, 2]
        await subscription.close()


@pytest.mark.timeout(90)
async def test_a_message_whose_sidecar_died_comes_again_after_ack_wait(
    build: Build, backend: Backend, topic: str, tmp_path: Any
) -> None:
    group = {"consumerID": f"{RUN}-failover"}
    gate = asyncio.Event()
    with TcpProxy("127.0.0.1", backend.port) as proxy:
        async with build(ackWait="1s", data_dir=tmp_path / "d", **backend.via(proxy)) as dying, \
                build(ackWait="1s", data_dir=tmp_path / "a") as alive, releasing(gate):
            stuck = Inbox(gate=gate)
            first = await dying.subscribe(topic, stuck, group)
            await alive.publish(topic, b"in flight", {"k": "v"})
            await eventually(lambda: stuck.running == 1)
            proxy.cut()  # the first sidecar is gone; its message is never acknowledged
            survivor = Inbox()
            second = await alive.subscribe(topic, survivor, group)
            await eventually(lambda: len(survivor.messages) == 1, within=10)
            message = survivor.messages[0]
            assert (message.data, message.metadata) == (b"in flight", {"k": "v"})
            assert message.attempt == 2  # JetStream's num_delivered
            await second.close()
            gate.set()
            await first.close()


@pytest.mark.timeout(60)
async def test_publish_fails_at_once_while_disconnected(build: Build, backend: Backend,
                                                        topic: str) -> None:
    import time

    from pylotto.core.errors import Unavailable

    with TcpProxy("127.0.0.1", backend.port) as proxy:
        async with build(timeout="5s", **backend.via(proxy)) as broker:
            await broker.publish(topic, b"up", {})
            proxy.cut()
            await asyncio.sleep(0.3)  # the client noticed
            started = time.monotonic()
            with pytest.raises(Unavailable, match="not connected"):
                await broker.publish(topic, b"down", {})
            assert time.monotonic() - started < 1


async def test_a_stream_not_answering_is_unavailable_then_served(build: Build, js: Any,
                                                                 topic: str) -> None:
    """JetStream answers a publish with 503 "no response from stream" while the stream has no
    leader (an election, a restart): UNAVAILABLE, a retry succeeds once it answers again
    (issue 17: it was INTERNAL). Here the stream is removed and created again behind the
    component's back, the one way a single server shows that state on demand."""
    from nats.js.api import StreamConfig

    stream = f"{RUN}_gone"
    async with build(streamName=stream) as broker:
        await broker.publish(topic, b"before", {})
        await js.delete_stream(stream)
        with pytest.raises(Unavailable, match="no response from stream"):
            await broker.publish(topic, b"meanwhile", {})
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"]))
        await broker.publish(topic, b"after", {})
        assert (await js.stream_info(stream)).state.messages == 1
