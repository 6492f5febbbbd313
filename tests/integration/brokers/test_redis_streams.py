"""``redis`` pub/sub (Redis Streams) on a real broker (its contract:
tests/conformance/pubsub; its settings: tests/unit/brokers/): what only Streams do — the layout,
the group created at ``0``, the delivery count as ``attempt``, messages of a dead consumer
claimed after ``processingTimeout``, a closing subscription handing its retries back at once,
and a stream deleted under a subscription."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.brokers.conftest import (
    RUN,
    Backend,
    Build,
    close_all,
    eventually,
)
from tests.support.inbox import Inbox

HOST = "127.0.0.1:6379"


@pytest.fixture
def backend() -> Backend:
    return Backend(type="redis", server="redis",
                   metadata={"redisHost": HOST, "processingTimeout": "3s",
                             "redeliverInterval": "500ms"},
                   proxy_key="redisHost", proxy_value="127.0.0.1:{port}",
                   traits=frozenset({"ordered"}))


@pytest.fixture
async def raw() -> AsyncIterator[Any]:
    """A plain redis-py client on the same server."""
    from redis.asyncio import Redis

    client = Redis(host="127.0.0.1", port=6379)
    yield client
    await client.aclose()



@pytest.mark.timeout(60)
async def test_stream_layout_and_trimming(build: Build, topic: str, raw: Any) -> None:
    async with build(maxLenApprox="100") as broker:
        await broker.publish(topic, b"payload", {"k": "v"})
        [(_, fields)] = await raw.xrange(topic)
        assert fields == {b"data": b"payload", b"metadata": json.dumps({"k": "v"}).encode()}
        for n in range(1000):
            await broker.publish(topic, str(n).encode(), {})
        assert await raw.xlen(topic) < 400  # about 100: trimmed by whole nodes


@pytest.mark.timeout(60)
async def test_a_group_starts_at_the_beginning_of_the_stream(build: Build, topic: str,
                                                             raw: Any) -> None:
    async with build() as broker:
        await broker.publish(topic, b"before any group", {})
        inbox = Inbox()
        subscription = await broker.subscribe(topic, inbox, {"consumerID": f"{RUN}-late"})
        groups = await raw.xinfo_groups(topic)
        assert [g["name"] for g in groups] == [f"{RUN}-late".encode()]
        await broker.publish(topic, b"after", {})
        await eventually(lambda: len(inbox.messages) == 2)
        assert inbox.data() == [b"before any group", b"after"]  # created at id 0
        await subscription.close()


@pytest.mark.timeout(60)
async def test_attempt_is_the_redis_delivery_count(build: Build, topic: str,
                                                   raw: Any) -> None:
    group = f"{RUN}-count"
    counts: list[int] = []

    async def handler(message: Any) -> None:
        [row] = await raw.xpending_range(topic, group, min="-", max="+", count=1)
        counts.append(int(row["times_delivered"]))
        inbox_attempts.append(message.attempt)
        if message.attempt < 3:
            raise RuntimeError("not yet")

    inbox_attempts: list[int] = []
    async with build() as broker:
        subscription = await broker.subscribe(topic, handler, {"consumerID": group})
        await broker.publish(topic, b"x", {})
        await eventually(lambda: len(inbox_attempts) == 3)
        await asyncio.sleep(0.3)
        assert inbox_attempts == [1, 2, 3]
        assert counts == [1, 2, 3]
        assert await raw.xpending_range(topic, group, min="-", max="+", count=10) == []
        await subscription.close()


@pytest.mark.timeout(60)
async def test_a_dead_consumers_message_is_claimed_after_processing_timeout(
    build: Build, topic: str, raw: Any
) -> None:
    group = f"{RUN}-claim"
    async with build(processingTimeout="1s", redeliverInterval="200ms") as broker:
        inbox = Inbox()
        subscription = await broker.subscribe(topic, inbox, {"consumerID": group})
        await subscription.close()  # the group exists; nobody reads
        await broker.publish(topic, b"orphan", {"k": "v"})
        # a sidecar that read it and died before acknowledging
        reply = await raw.xreadgroup(group, "dead-sidecar", {topic: ">"}, count=1)
        assert reply and reply[0][1][0][1][b"data"] == b"orphan"
        again = await broker.subscribe(topic, inbox, {"consumerID": group})
        await eventually(lambda: len(inbox.messages) == 1, within=5)
        assert inbox.messages[0].attempt == 2
        assert inbox.messages[0].metadata == {"k": "v"}
        await eventually(lambda: inbox.running == 0)
        await asyncio.sleep(0.3)
        assert await raw.xpending_range(topic, group, min="-", max="+", count=10) == []
        await again.close()


@pytest.mark.timeout(60)
async def test_closing_hands_a_message_waiting_for_its_retry_back_at_once(
    build: Build, topic: str, raw: Any
) -> None:
    group = f"{RUN}-handback"
    # a long back-off and processing timeout: only the hand-back makes it come quickly
    async with build(backOffDuration="30s", processingTimeout="30s",
                     redeliverInterval="200ms") as broker:
        failing = Inbox(fail=lambda m: True)
        subscription = await broker.subscribe(topic, failing, {"consumerID": group})
        await broker.publish(topic, b"unfinished", {})
        await eventually(lambda: len(failing.messages) == 1)
        await subscription.close()
        later = Inbox()
        again = await broker.subscribe(topic, later, {"consumerID": group})
        await eventually(lambda: len(later.messages) == 1, within=5)
        assert later.messages[0].data == b"unfinished"
        assert later.messages[0].attempt == 2
        await again.close()


@pytest.mark.timeout(60)
async def test_a_stream_deleted_under_a_subscription_is_created_again(
    build: Build, topic: str, raw: Any
) -> None:
    async with build() as broker:
        inbox = Inbox()
        subscription = await broker.subscribe(topic, inbox, {})
        await broker.publish(topic, b"one", {})
        await eventually(lambda: len(inbox.messages) == 1)
        await raw.delete(topic)  # e.g. a server restarted without persistence
        await broker.publish(topic, b"two", {})
        await eventually(lambda: len(inbox.messages) == 2, within=10)
        assert inbox.data() == [b"one", b"two"]
        await subscription.close()


@pytest.mark.timeout(60)
async def test_consumer_names_are_stable_and_do_not_pile_up(build: Build, topic: str,
                                                            raw: Any) -> None:
    group = {"consumerID": f"{RUN}-names"}

    def consumer(subscription: Any) -> str:
        name: str = subscription._inner.consumer
        return name

    async with build() as broker:
        first = await broker.subscribe(topic, Inbox(), group)
        second = await broker.subscribe(topic, Inbox(), group)
        assert consumer(first).endswith("-0") and consumer(second).endswith("-1")
        await first.close()
        third = await broker.subscribe(topic, Inbox(), group)
        assert consumer(third) == consumer(first)  # the lowest free rank
        await close_all(second, third)
    inbox = Inbox()
    for run in (1, 2):  # a sidecar restarted twice, receiving each time
        async with build() as restarted:
            again = await restarted.subscribe(topic, inbox, group)
            await restarted.publish(topic, b"x", {})
            await eventually(lambda: len(inbox.messages) == run)  # noqa: B023 - awaited here
            await again.close()
    consumers = await raw.xinfo_consumers(topic, group["consumerID"])
    assert [c["name"].decode() for c in consumers] == [consumer(first)]
