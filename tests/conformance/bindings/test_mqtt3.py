"""``bindings.mqtt3`` (output) against the real broker: what Dapr's publishes, read back by a
subscriber."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from pylotto.components.bindings.base import InputBinding, InputEvent, directions
from pylotto.core.errors import ConfigError, Internal, Unavailable
from pylotto.core.tasks import stop_task
from tests.conformance.bindings.support import bound
from tests.conformance.cases import RUN_PREFIX, Case, load_cases

pytestmark = pytest.mark.timeout(60)

CASE: Case = next(p.values[0] for p in load_cases("bindings") if p.id == "mqtt3")


@pytest.fixture
def topic() -> str:
    return f"{RUN_PREFIX}/bt/{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def subscriber(topic: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"sub-{uuid.uuid4().hex[:8]}") \
            as client:
        await client.subscribe(f"{topic}/#", qos=1)
        await client.subscribe(topic, qos=1)
        yield client


async def received(client: aiomqtt.Client) -> Any:
    async with asyncio.timeout(10):
        async for message in client.messages:
            return message
    raise AssertionError("no message")


async def test_create_publishes_to_the_topic(tmp_path: Path, topic: str,
                                             subscriber: aiomqtt.Client) -> None:
    async with bound(CASE, tmp_path, topic=topic) as binding:
        reply = await binding.invoke("create", b'{"reading": 21.5}')
        assert (reply.data, reply.metadata) == (b"", {})
        message = await received(subscriber)
        assert (str(message.topic), bytes(message.payload), message.qos, message.retain) == (
            topic, b'{"reading": 21.5}', 1, False)
        await binding.invoke("create", b"elsewhere", topic=f"{topic}/other")
        other = await received(subscriber)
        assert (str(other.topic), bytes(other.payload)) == (f"{topic}/other", b"elsewhere")


async def test_retain(tmp_path: Path, topic: str) -> None:
    async with bound(CASE, tmp_path, topic=topic, retain="true") as binding:
        await binding.invoke("create", b"kept")
    async with aiomqtt.Client("127.0.0.1", 1883) as late:
        await late.subscribe(topic, qos=1)
        message = await received(late)
        assert (bytes(message.payload), message.retain) == (b"kept", True)
        await late.publish(topic, b"", qos=1, retain=True)  # clear the retained message


async def test_connects_on_first_publish(tmp_path: Path) -> None:
    """A broker that is down does not fail the start (Dapr's connects on the first publish)."""
    async with bound(CASE, tmp_path, url="tcp://127.0.0.1:1") as binding:
        with pytest.raises(Unavailable, match="failed to create producer connection"):
            await binding.invoke("create", b"x")


@pytest.mark.parametrize("missing", ["url", "topic", "consumerID"])
async def test_required_metadata(tmp_path: Path, missing: str) -> None:
    metadata = {k: v for k, v in CASE.resolved_metadata().items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        async with bound(Case("bindings", "mqtt3", CASE.type, metadata=metadata,
                              servers=CASE.servers), tmp_path):
            pass


async def test_input_delivers_with_the_topic_and_retries_a_failure(tmp_path: Path,
                                                                   topic: str) -> None:
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

    async with bound(CASE, tmp_path, topic=topic, backOffMaxRetries="1", retain="true",
                     consumerID=f"{RUN_PREFIX}-{uuid.uuid4().hex[:6]}") as binding:
        assert isinstance(binding.component, InputBinding)
        assert directions(binding.component) == {"input", "output"}
        # retained: the consumer gets it when it subscribes, whenever that is
        await binding.invoke("create", b'{"t": 1}')
        reading = asyncio.create_task(binding.component.read(handler))
        try:
            async with asyncio.timeout(20):
                await arrived.get()
                await arrived.get()  # the retry, 5 s later (Dapr's constant back-off)
            assert [e.data for e in events] == [b'{"t": 1}', b'{"t": 1}']
            assert events[0].metadata == {"topic": topic}
        finally:
            await stop_task(reading)
    async with aiomqtt.Client("127.0.0.1", 1883) as cleaner:
        await cleaner.publish(topic, b"", qos=1, retain=True)  # clear the retained message
