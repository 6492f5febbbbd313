"""``bindings.rabbitmq`` (output) against the real broker: the queue Dapr's declares and the
message Dapr's publishes, read back with aio-pika."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from pylotto.components.bindings.base import InputBinding, InputEvent, directions
from pylotto.core.errors import ConfigError, Internal, InvalidArgument
from pylotto.core.tasks import stop_task
from tests.conformance.bindings.support import bound
from tests.conformance.cases import RUN_PREFIX, Case, load_cases

pytestmark = pytest.mark.timeout(60)

CASE: Case = next(p.values[0] for p in load_cases("bindings") if p.id == "rabbitmq")
URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
def queue() -> str:
    return f"{RUN_PREFIX}-bq-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def channel() -> AsyncIterator[Any]:
    connection = await aio_pika.connect(URL)
    yield await connection.channel()
    await connection.close()


async def next_message(channel: Any, queue: str) -> Any:
    declared = await channel.get_queue(queue, ensure=True)
    for _ in range(100):
        message = await declared.get(fail=False, no_ack=True)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message in {queue}")


async def test_create_publishes_to_the_queue(tmp_path: Path, queue: str, channel: Any) -> None:
    async with bound(CASE, tmp_path, queueName=queue, durable="true",
                     deleteWhenUnused="false") as binding:
        reply = await binding.invoke("create", b'{"order": 1}', tenant="a", ttlInSeconds="60",
                                     priority="300", contentType="application/json",
                                     messageID="m-1", CorrelationID="c-1", type="order")
        assert (reply.data, reply.metadata) == (b"", {})
        message = await next_message(channel, queue)
        assert message.body == b'{"order": 1}'
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.headers["tenant"] == "a"
        assert message.headers["ttlInSeconds"] == "60", "every metadata entry is a header"
        assert message.expiration == 60.0
        assert message.priority == 255, "clamped to 255, as Dapr's"
        assert (message.content_type, message.message_id, message.correlation_id,
                message.type) == ("application/json", "m-1", "c-1", "order")
        await binding.invoke("create", b"plain")
        plain = await next_message(channel, queue)
        assert (plain.body, plain.content_type, plain.expiration) == (
            b"plain", "text/plain", None)
        assert not plain.priority, "no priority asked: none set"
    await channel.queue_delete(queue)


async def test_queue_is_declared_with_dapr_arguments(tmp_path: Path, queue: str,
                                                     channel: Any) -> None:
    async with bound(CASE, tmp_path, queueName=queue, durable="true", deleteWhenUnused="false",
                     ttlInSeconds="30", maxPriority="5"):
        pass
    # a passive declare with other arguments would fail; the same arguments are accepted
    declared = await channel.declare_queue(queue, durable=True, arguments={
        "x-message-ttl": 30000, "x-max-priority": 5})
    assert declared.name == queue
    await channel.queue_delete(queue)


async def test_bad_request_metadata(tmp_path: Path, queue: str) -> None:
    async with bound(CASE, tmp_path, queueName=queue) as binding:
        with pytest.raises(InvalidArgument, match="priority value must be a valid integer"):
            await binding.invoke("create", b"x", priority="high")
        with pytest.raises(InvalidArgument, match="must be a valid integer"):
            await binding.invoke("create", b"x", ttl="soon")


@pytest.mark.parametrize("missing", ["host", "queueName"])
async def test_host_and_queue_are_required(tmp_path: Path, missing: str) -> None:
    metadata = {k: v for k, v in CASE.resolved_metadata().items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        async with bound(Case("bindings", "rabbitmq", CASE.type, metadata=metadata,
                              servers=CASE.servers), tmp_path):
            pass


async def test_input_acks_after_the_apps_success_and_requeues_a_failure(
    tmp_path: Path, queue: str, channel: Any
) -> None:
    events: list[InputEvent] = []
    arrived: asyncio.Queue[None] = asyncio.Queue()
    failures = 1

    async def handler(event: InputEvent) -> bytes:
        nonlocal failures
        events.append(event)
        arrived.put_nowait(None)
        if failures:
            failures -= 1
            raise Internal("the app failed the event")
        return b""

    async with bound(CASE, tmp_path, queueName=queue, durable="true",
                     deleteWhenUnused="false") as binding:
        assert isinstance(binding.component, InputBinding)
        assert directions(binding.component) == {"input", "output"}
        await binding.invoke("create", b"first", **{"tenant id": "a"})
        reading = asyncio.create_task(binding.component.read(handler))
        try:
            async with asyncio.timeout(15):
                for _ in range(2):
                    await arrived.get()
            assert [e.data for e in events] == [b"first", b"first"], "redelivered after a nack"
            assert events[0].metadata["tenant+id"] == "a", "keys query-escaped, as Dapr's"
            await binding.invoke("create", b"second")
            async with asyncio.timeout(15):
                await arrived.get()
            assert events[2].data == b"second"
        finally:
            await stop_task(reading)
        declared = await channel.declare_queue(queue, passive=True)
        assert declared.declaration_result.message_count == 0, "both acked"
    await channel.queue_delete(queue)


async def test_input_stopped_mid_event_leaves_it_in_the_queue(
    tmp_path: Path, queue: str, channel: Any
) -> None:
    started = asyncio.Event()

    async def slow(event: InputEvent) -> bytes:
        started.set()
        await asyncio.sleep(60)
        return b""

    async with bound(CASE, tmp_path, queueName=queue, durable="true",
                     deleteWhenUnused="false") as binding:
        assert isinstance(binding.component, InputBinding)
        await binding.invoke("create", b"unfinished")
        reading = asyncio.create_task(binding.component.read(slow))
        async with asyncio.timeout(15):
            await started.wait()
        await stop_task(reading)
    message = await next_message(channel, queue)
    assert (message.body, message.redelivered) == (b"unfinished", True)
    await channel.queue_delete(queue)
