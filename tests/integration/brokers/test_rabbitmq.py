"""``rabbitmq`` pub/sub on a real broker (its contract: tests/conformance/pubsub; its settings:
tests/unit/brokers/): the layout (exchange per topic, durable queue ``<group>-<topic>``),
persistent messages, prefetch, the queue settings in effect, and a message whose sidecar died
while handling it going to another member with its delivery count."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pylotto.components.pubsub.rabbitmq import queue_name
from pylotto.core.errors import Unavailable
from tests.integration.brokers.conftest import (
    APP_ID,
    RUN,
    Backend,
    Build,
    eventually,
    releasing,
)
from tests.support.inbox import Inbox, publish_all
from tests.support.tcp_proxy import TcpProxy

URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def backend() -> Backend:
    return Backend(type="rabbitmq", server="rabbitmq", metadata={"connectionString": URL},
                   proxy_key="connectionString",
                   proxy_value="amqp://guest:guest@127.0.0.1:{port}/",
                   traits=frozenset({"ordered"}))


@pytest.fixture
async def channel() -> AsyncIterator[Any]:
    """A plain aio-pika channel on the same broker (a passive declare of a missing queue
    closes a channel: each call gets its own)."""
    import aio_pika

    connection = await aio_pika.connect(URL, timeout=10)
    yield connection
    await connection.close()


async def queue_info(connection: Any, name: str) -> Any:
    """The queue's declaration (message and consumer counts); raises if it does not exist."""
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result
    finally:
        if not channel.is_closed:
            await channel.close()



@pytest.mark.timeout(60)
async def test_layout_durable_queue_per_group_and_persistent_messages(
    build: Build, topic: str, channel: Any
) -> None:
    group = f"{RUN}-layout"
    async with build() as broker:
        subscription = await broker.subscribe(topic, Inbox(), {"consumerID": group})
        await subscription.close()
        default = await broker.subscribe(topic, Inbox(), {})
        await default.close()
        await broker.publish(topic, b"kept", {"k": "v"})
        info = await queue_info(channel, queue_name(group, topic))
        assert queue_name(group, topic) == f"{group}-{topic}"
        assert info.message_count == 1 and info.consumer_count == 0
        assert (await queue_info(channel, f"{APP_ID}-{topic}")).message_count == 1
        raw = await channel.channel()
        queue = await raw.get_queue(queue_name(group, topic), ensure=False)
        message = await queue.get(timeout=5)
        assert message.body == b"kept"
        assert message.delivery_mode == 2  # persistent
        assert message.headers["pylotto-metadata"] == '{"k": "v"}'
        await message.nack(requeue=True)
        arguments = await queue_arguments(queue_name(group, topic))
        assert "quorum" in arguments
        await raw.close()


async def queue_arguments(name: str) -> str:
    """What rabbitmqctl says of the queue's durability and type."""
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", "--no-table-headers", "list_queues", "name", "durable", "type",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    for line in out.decode().splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return " ".join(fields[1:])
    raise AssertionError(f"queue {name} not listed")


@pytest.mark.timeout(60)
async def test_a_queue_deleted_when_unused_goes_with_its_last_subscriber(
    build: Build, topic: str, channel: Any
) -> None:
    group = f"{RUN}-transient"
    async with build(deletedWhenUnused="true", durable="false") as broker:
        inbox = Inbox()
        subscription = await broker.subscribe(topic, inbox, {"consumerID": group})
        await broker.publish(topic, b"while subscribed", {})
        await eventually(lambda: len(inbox.messages) == 1)
        assert "classic" in await queue_arguments(queue_name(group, topic))
        await subscription.close()
        await asyncio.sleep(0.3)
        import aiormq.exceptions

        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await queue_info(channel, queue_name(group, topic))


@pytest.mark.timeout(60)
async def test_prefetch_leaves_the_rest_to_other_members(build: Build, topic: str,
                                                         tmp_path: Any) -> None:
    group = {"consumerID": f"{RUN}-prefetch"}
    gate = asyncio.Event()
    async with build(maxConcurrentHandlers="2", data_dir=tmp_path / "a") as busy_broker, \
            build(data_dir=tmp_path / "b") as free_broker, releasing(gate):
        busy = Inbox(gate=gate)
        first = await busy_broker.subscribe(topic, busy, group)
        await publish_all(busy_broker, topic, 2, prefix="held")
        await eventually(lambda: busy.running == 2)
        free = Inbox()
        second = await free_broker.subscribe(topic, free, group)
        sent = await publish_all(busy_broker, topic, 6)
        await eventually(lambda: len(free.messages) == 6)
        assert sorted(free.data()) == sorted(sent)  # the busy member holds only 2
        assert busy.started == 2
        gate.set()
        await eventually(lambda: len(busy.messages) == 2)
        await first.close()
        await second.close()


@pytest.mark.timeout(90)
async def test_a_message_whose_sidecar_died_goes_to_another_member(
    build: Build, backend: Backend, topic: str, tmp_path: Any
) -> None:
    group = {"consumerID": f"{RUN}-failover"}
    gate = asyncio.Event()
    with TcpProxy("127.0.0.1", backend.port) as proxy:
        async with build(data_dir=tmp_path / "dying", **backend.via(proxy)) as dying, \
                build(data_dir=tmp_path / "alive") as alive, releasing(gate):
            stuck = Inbox(gate=gate)
            first = await dying.subscribe(topic, stuck, group)
            await alive.publish(topic, b"in flight", {"k": "v"})
            await eventually(lambda: stuck.running == 1)
            survivor = Inbox()
            second = await alive.subscribe(topic, survivor, group)
            await asyncio.sleep(0.5)
            assert survivor.messages == []  # unacknowledged, but held by the first member
            proxy.cut()  # the first sidecar's connection dies
            await eventually(lambda: len(survivor.messages) == 1, within=10)
            message = survivor.messages[0]
            assert (message.data, message.metadata) == (b"in flight", {"k": "v"})
            assert message.attempt == 2  # quorum queue: x-delivery-count 1
            await second.close()
            gate.set()  # the dead sidecar's handler finishes: its ack cannot reach the broker
            await first.close()


@pytest.mark.timeout(60)
async def test_classic_queues_know_a_redelivery_only_as_redelivered(
    build: Build, backend: Backend, topic: str, tmp_path: Any
) -> None:
    group = {"consumerID": f"{RUN}-classic"}
    gate = asyncio.Event()
    with TcpProxy("127.0.0.1", backend.port) as proxy:
        async with build(queueType="classic", data_dir=tmp_path / "d",
                         **backend.via(proxy)) as dying, \
                build(queueType="classic", data_dir=tmp_path / "a") as alive, \
                releasing(gate):
            stuck = Inbox(gate=gate)
            first = await dying.subscribe(topic, stuck, group)
            await alive.publish(topic, b"again", {})
            await eventually(lambda: stuck.running == 1)
            proxy.cut()
            survivor = Inbox()
            second = await alive.subscribe(topic, survivor, group)
            await eventually(lambda: len(survivor.messages) == 1, within=10)
            assert survivor.messages[0].attempt == 2
            await second.close()
            gate.set()
            await first.close()


async def test_a_nacked_publish_is_unavailable(build: Build, channel: Any, topic: str) -> None:
    """The broker nacks a confirmed publish it cannot take for now (here a full queue with
    ``x-overflow: reject-publish``; a quorum queue without a leader does the same): UNAVAILABLE,
    a retry is taken once there is room (issue 17: it was INTERNAL)."""
    import aio_pika

    async with build() as broker:
        await broker.publish(topic, b"declares the exchange", {})
        admin = await channel.channel()
        queue = await admin.declare_queue(f"{topic}-full", arguments={
            "x-max-length": 1, "x-overflow": "reject-publish"}, auto_delete=False)
        try:
            exchange = await admin.get_exchange(topic)
            await queue.bind(exchange, routing_key="#")
            await broker.publish(topic, b"fills the queue", {})
            with pytest.raises(Unavailable, match="nack"):
                await broker.publish(topic, b"refused", {})
            await queue.purge()
            await broker.publish(topic, b"taken again", {})
            message = await queue.get(timeout=5)
            assert isinstance(message, aio_pika.IncomingMessage)
            assert message.body == b"taken again"
        finally:
            await queue.delete(if_unused=False, if_empty=False)
            await admin.close()
