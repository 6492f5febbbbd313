"""The pub/sub conformance suite: every test runs against every broker of cases.yaml.

The contract (``pylotto.components.pubsub.base``): a handler that returns acknowledges, one
that raises gets the message again after the back-off (``attempt`` counts), at most
``maxConcurrentHandlers`` calls at a time, consumer groups share, groups each get everything.
On top, the capability layer's CloudEvents, raw payloads and dead-letter topics, run over each
broker.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pylotto.appchannel.base import DeliveryStatus, TopicEvent
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.pubsub import PublishRequest, PubSubCapability
from pylotto.components.base import Component
from pylotto.components.pubsub.base import (
    BulkPublishEntry,
    Feature,
    PubSub,
    Subscription,
)
from pylotto.config.model import AppConfig
from pylotto.core.errors import Unavailable
from tests.conformance.cases import (
    RUN_PREFIX,
    Case,
    FallsBack,
    Undeclared,
    assert_declares_exactly,
    build,
    load_cases,
    once_back,
    undeclared,
)
from tests.support.inbox import Inbox, publish_all
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)
WAIT = 15.0


@pytest.fixture(params=load_cases("pubsub"))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


@pytest.fixture
def topic() -> str:
    return f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def broker(case: Case, tmp_path: Path) -> AsyncIterator[PubSub]:
    async with build(case, tmp_path, app_id="conformance") as component:
        assert isinstance(component, PubSub)
        yield component


async def eventually(check: Callable[[], bool], within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# ---- the component contract -----------------------------------------------------------------


async def test_members_of_a_group_share_its_messages(broker: PubSub, topic: str) -> None:
    one, two = Inbox(delay=0.01), Inbox(delay=0.01)
    first = await broker.subscribe(topic, one, {"consumerID": "shared"})
    second = await broker.subscribe(topic, two, {"consumerID": "shared"})
    sent = await publish_all(broker, topic, 40)
    await eventually(lambda: len(one.messages) + len(two.messages) >= 40)
    await asyncio.sleep(0.3)
    received = one.data() + two.data()
    assert sorted(received) == sorted(sent)  # each exactly once across the group
    await first.close()
    await second.close()


@pytest.mark.parametrize("case", load_cases("pubsub", where=lambda c: "durable" in c.traits
                                            and not c.shared), indirect=True)
async def test_a_group_keeps_messages_while_nobody_listens(broker: PubSub, topic: str) -> None:
    # one component throughout (shared brokers are also restarted: the test further down)
    first = Inbox()
    subscription = await broker.subscribe(topic, first, {"consumerID": "keeper"})
    await broker.publish(topic, b"before", {})
    await eventually(lambda: len(first.messages) == 1)
    await subscription.close()
    sent = await publish_all(broker, topic, 3, prefix="while-away-")
    later = Inbox()
    again = await broker.subscribe(topic, later, {"consumerID": "keeper"})
    await eventually(lambda: len(later.messages) == 3)
    assert sorted(later.data()) == sorted(sent)
    await again.close()


async def test_a_closed_subscription_receives_nothing_more(broker: PubSub, topic: str) -> None:
    # closing right after subscribing, many times: a close that races the first read must
    # still stop the loop (redis-py once swallowed the cancellation: the loop read on forever
    # and took messages for a subscriber that was gone)
    closed = [Inbox() for _ in range(10)]
    for n, inbox in enumerate(closed):
        subscription = await broker.subscribe(topic, inbox, {"consumerID": "ghosts"})
        await asyncio.sleep(0.01 * (n % 3))
        await subscription.close()
    live = Inbox()
    subscription = await broker.subscribe(topic, live, {"consumerID": "ghosts"})
    sent = await publish_all(broker, topic, 5)
    await eventually(lambda: len(live.messages) == len(sent))
    await subscription.close()
    assert [inbox.data() for inbox in closed] == [[]] * len(closed)


async def test_bulk_publish(broker: PubSub, topic: str) -> None:
    inbox = Inbox()
    subscription = await broker.subscribe(topic, inbox, {})
    entries = [BulkPublishEntry(str(n), f"bulk{n}".encode(), {"n": str(n)}) for n in range(5)]
    assert await broker.bulk_publish(topic, entries, {}) == []
    await eventually(lambda: len(inbox.messages) == 5)
    assert sorted(inbox.data()) == [f"bulk{n}".encode() for n in range(5)]
    await subscription.close()


# ---- the capability over each broker: CloudEvents, raw payloads, dead letters ----------------


def capability_over(broker: PubSub) -> PubSubCapability:
    return PubSubCapability(ComponentSet("pubsub", {"bus": broker}),
                            RuntimeContext(AppConfig(app_id="publisher"), Path("/nonexistent")))


def app(verdict: DeliveryStatus = DeliveryStatus.SUCCESS
        ) -> tuple[list[TopicEvent], Callable[[TopicEvent], Awaitable[DeliveryStatus]]]:
    events: list[TopicEvent] = []

    async def deliver(event: TopicEvent) -> DeliveryStatus:
        events.append(event)
        return verdict

    return events, deliver


async def test_cloudevent_fields_reach_the_app(broker: PubSub, topic: str) -> None:
    pubsub = capability_over(broker)
    events, deliver = app()
    subscription = await broker.subscribe(
        topic, pubsub.handler("bus", topic, {}, deliver), {})
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await pubsub.publish(PublishRequest("bus", topic, b'{"n": 1}', "application/json",
                                        trace_parent=parent))
    await eventually(lambda: len(events) == 1)
    event = events[0]
    assert (event.source, event.spec_version, event.topic, event.pubsub_name) == (
        "publisher", "1.0", topic, "bus")
    assert event.data_content_type == "application/json" and json.loads(event.data) == {"n": 1}
    assert event.id and event.type
    assert event.cloud_event["traceparent"] == parent
    await subscription.close()


async def test_raw_payloads_travel_unwrapped(broker: PubSub, topic: str) -> None:
    pubsub = capability_over(broker)
    received = Inbox()
    raw = await broker.subscribe(topic, received, {})
    await pubsub.publish(PublishRequest("bus", topic, b"\x00raw bytes",
                                        metadata={"rawPayload": "true"}))
    await eventually(lambda: len(received.messages) == 1)
    assert received.data() == [b"\x00raw bytes"]
    await raw.close()


async def test_dropped_and_exhausted_events_go_to_the_dead_letter_topic(
    case: Case, tmp_path: Path, topic: str
) -> None:
    async with build(case, tmp_path, backOffMaxRetries="1") as broker:
        assert isinstance(broker, PubSub)
        pubsub = capability_over(broker)
        dead = Inbox()
        dead_subscription = await broker.subscribe(f"{topic}-dead", dead, {})
        _, drop = app(DeliveryStatus.DROP)
        dropping = await broker.subscribe(topic, pubsub.handler(
            "bus", topic, {}, drop, dead_letter_topic=f"{topic}-dead"), {})
        _, retry = app(DeliveryStatus.RETRY)
        retrying = await broker.subscribe(f"{topic}-retry", pubsub.handler(
            "bus", f"{topic}-retry", {}, retry, dead_letter_topic=f"{topic}-dead"), {})
        sent = {"contentType": "text/plain", "k": "v"}  # pluggable: the publish's content type
        await pubsub.publish(PublishRequest("bus", topic, b"dropped", "text/plain", sent))
        await pubsub.publish(PublishRequest("bus", f"{topic}-retry", b"exhausted", "text/plain",
                                            sent))
        await eventually(lambda: len(dead.messages) == 2)
        payloads = sorted(json.loads(m.data)["data"] for m in dead.messages)
        assert payloads == ["dropped", "exhausted"]
        for message in dead.messages:  # daprd's sendToDeadLetter: the message's metadata,
            # pubsubName, and content-type when the broker reported one (subscription.go)
            assert message.metadata.get("pubsubName") == "bus"
            if "reports-content-type" in case.traits:
                assert message.metadata["content-type"] == "text/plain"
            else:
                assert "content-type" not in message.metadata
        for subscription in (dead_subscription, dropping, retrying):
            await subscription.close()


# ---- features: declared as cases.yaml lists them; what an undeclared one does ---------------


async def test_declares_exactly_the_case_features(case: Case, tmp_path: Path) -> None:
    async with build(case, tmp_path) as component:
        assert_declares_exactly(case, component)


async def the_cloudevent_carries_the_expiration(case: Case, component: Component) -> None:
    """Without MESSAGE_TTL the capability writes ``expiration`` (now + ``ttlInSeconds``) into
    the CloudEvent it hands the broker (subscribers' capabilities drop expired events)."""
    assert isinstance(component, PubSub)
    topic = f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}"
    pubsub = capability_over(component)
    received = Inbox()
    subscription = await component.subscribe(topic, received, {})
    before = time.time()
    await pubsub.publish(PublishRequest("bus", topic, b"short-lived", "text/plain",
                                        metadata={"ttlInSeconds": "30"}))
    await eventually(lambda: len(received.messages) == 1)
    event = json.loads(received.messages[0].data)
    expires = datetime.fromisoformat(event["expiration"].replace("Z", "+00:00")).timestamp()
    assert before + 30 <= expires <= time.time() + 31
    await subscription.close()


UNDECLARED: dict[str, Undeclared] = {
    Feature.MESSAGE_TTL: FallsBack(the_cloudevent_carries_the_expiration),
}
"""What happens to a feature a case does not list."""


@pytest.mark.parametrize(("case", "feature"), undeclared("pubsub", UNDECLARED),
                         indirect=["case"])
async def test_an_undeclared_feature_is_refused_or_falls_back(
    case: Case, feature: str, tmp_path: Path
) -> None:
    async with build(case, tmp_path) as component:
        await UNDECLARED[feature].check(case, component)


# ---- the contract over fresh components: payloads, settling, sidecars, restarts, outages -----

Build = Callable[..., AbstractAsyncContextManager[PubSub]]


@pytest.fixture
def new_broker(case: Case, tmp_path: Path) -> Build:
    """``async with new_broker(**metadata) as broker``: another initialised component of the
    case (closed on exit); ``data_dir=`` gives it the data directory of another sidecar."""

    @asynccontextmanager
    async def make(*, data_dir: Path | None = None, **metadata: str) -> AsyncIterator[PubSub]:
        async with build(case, data_dir or tmp_path, **metadata) as component:
            assert isinstance(component, PubSub)
            yield component

    return make


async def close_all(*subscriptions: Subscription) -> None:
    for subscription in subscriptions:
        await subscription.close()


def shared_cases() -> list[Any]:
    """Cases whose components, built twice, share one backend (two sidecars, a restart)."""
    return load_cases("pubsub", where=lambda c: c.shared)


def proxied_cases() -> list[Any]:
    return load_cases("pubsub", where=lambda c: bool(c.proxy))


@pytest.mark.timeout(90)
async def test_publish_then_subscribe_in_order(
    new_broker: Build, case: Case, topic: str
) -> None:
    async with new_broker(maxConcurrentHandlers="1") as broker:
        inbox = Inbox()
        subscription = await broker.subscribe(topic, inbox, {})
        await broker.publish(topic, b"\x00first\xff", {"k": "v", "traceparent": "00-x"})
        sent = [b"\x00first\xff", *await publish_all(broker, topic, 9)]
        await eventually(lambda: len(inbox.messages) >= 10)
        await asyncio.sleep(0.3)
        if "ordered" in case.traits:
            assert inbox.data() == sent
        else:
            assert sorted(inbox.data()) == sorted(sent)
        first = next(m for m in inbox.messages if m.data == b"\x00first\xff")
        assert first.topic == topic
        assert first.attempt == 1
        assert first.metadata == {"k": "v", "traceparent": "00-x"}
        await subscription.close()


@pytest.mark.timeout(90)
async def test_a_raising_handler_gets_the_message_again_with_attempt_2(
    new_broker: Build, topic: str
) -> None:
    async with new_broker() as broker:
        inbox = Inbox(fail=lambda m: m.attempt == 1)
        subscription = await broker.subscribe(topic, inbox, {})
        await broker.publish(topic, b"retry me", {"k": "v"})
        await eventually(lambda: len(inbox.messages) == 2)
        assert inbox.attempts(b"retry me") == [1, 2]
        assert inbox.messages[1].metadata == {"k": "v"}
        await asyncio.sleep(1.0)
        assert len(inbox.messages) == 2  # acknowledged after the success
        await subscription.close()


@pytest.mark.timeout(90)
async def test_gives_up_then_drops_the_message_for_good(new_broker: Build, topic: str) -> None:
    async with new_broker(backOffMaxRetries="2") as broker:
        poisoned = Inbox(fail=lambda m: True)
        subscription = await broker.subscribe(topic, poisoned,
                                               {"consumerID": f"{RUN_PREFIX}-gu"})
        await broker.publish(topic, b"poison", {})
        await eventually(lambda: len(poisoned.messages) == 3)
        await asyncio.sleep(1.0)
        assert poisoned.attempts(b"poison") == [1, 2, 3]  # 2 retries, then dropped
        await subscription.close()
        # settled in the broker: the group's next subscriber does not get it again
        after = Inbox()
        again = await broker.subscribe(topic, after, {"consumerID": f"{RUN_PREFIX}-gu"})
        await broker.publish(topic, b"next", {})
        await eventually(lambda: len(after.messages) >= 1)
        await asyncio.sleep(0.5)
        assert after.data() == [b"next"]
        await again.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", shared_cases(), indirect=True)
async def test_members_of_a_group_in_two_sidecars_share_its_messages(
    new_broker: Build, topic: str, tmp_path: Path
) -> None:
    # two sidecars: distinct data directories (see the MQTT client ids)
    async with new_broker(maxConcurrentHandlers="1", data_dir=tmp_path / "one") as one_broker, \
            new_broker(maxConcurrentHandlers="1", data_dir=tmp_path / "two") as two_broker:
        one, two = Inbox(delay=0.05), Inbox(delay=0.05)
        group = {"consumerID": f"{RUN_PREFIX}-shared"}
        first = await one_broker.subscribe(topic, one, group)
        second = await two_broker.subscribe(topic, two, group)
        sent = await publish_all(one_broker, topic, 30)
        await eventually(lambda: len(one.messages) + len(two.messages) >= 30)
        await asyncio.sleep(0.5)
        assert sorted(one.data() + two.data()) == sorted(sent)  # each once in total
        assert one.messages and two.messages, "one member got every message"
        await close_all(first, second)


@pytest.mark.timeout(90)
async def test_every_group_gets_every_message_once(new_broker: Build, topic: str) -> None:
    async with new_broker() as broker:
        orders, billing = Inbox(), Inbox()
        first = await broker.subscribe(topic, orders, {"consumerID": f"{RUN_PREFIX}-orders"})
        second = await broker.subscribe(topic, billing, {"consumerID": f"{RUN_PREFIX}-billing"})
        sent = await publish_all(broker, topic, 10)
        await eventually(lambda: len(orders.messages) == 10 and len(billing.messages) == 10)
        await asyncio.sleep(0.3)
        assert sorted(orders.data()) == sorted(billing.data()) == sorted(sent)
        await close_all(first, second)


@pytest.mark.timeout(90)
async def test_handler_calls_in_flight_are_bounded(
    new_broker: Build, topic: str
) -> None:
    async with new_broker(maxConcurrentHandlers="3") as broker:
        # every third message fails once: retries must respect the bound too
        inbox = Inbox(delay=0.1, fail=lambda m: m.attempt == 1 and int(m.data[1:]) % 3 == 0)
        subscription = await broker.subscribe(topic, inbox, {})
        sent = await publish_all(broker, topic, 15)
        await eventually(lambda: len({*inbox.data()}) == 15 and inbox.running == 0)
        assert inbox.most_running == 3
        assert sorted({*inbox.data()}) == sorted(sent)
        await subscription.close()


@pytest.mark.timeout(90)
async def test_close_waits_for_handlers_in_flight_and_settles_them(
    new_broker: Build, topic: str
) -> None:
    async with new_broker() as broker:
        group = {"consumerID": f"{RUN_PREFIX}-closer"}
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


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", load_cases("pubsub", where=lambda c: c.shared
                                            and "durable" in c.traits), indirect=True)
async def test_a_group_keeps_what_is_published_while_nobody_listens(
    new_broker: Build, topic: str
) -> None:
    async with new_broker() as broker:
        group = {"consumerID": f"{RUN_PREFIX}-keeper"}
        first = Inbox()
        subscription = await broker.subscribe(topic, first, group)
        await broker.publish(topic, b"before", {})
        await eventually(lambda: len(first.messages) == 1)
        await subscription.close()
        sent = await publish_all(broker, topic, 3, prefix="while-away-")
    async with new_broker() as restarted:  # a new component: nothing kept in the process
        later = Inbox()
        again = await restarted.subscribe(topic, later, group)
        await eventually(lambda: len(later.messages) == 3)
        await asyncio.sleep(0.3)
        assert sorted(later.data()) == sorted(sent)
        await again.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", proxied_cases(), indirect=True)
async def test_outage_publish_unavailable_in_time_then_delivery_resumes(
    new_broker: Build, case: Case, topic: str
) -> None:
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        async with new_broker() as direct, \
                new_broker(**case.via_proxy(proxy.port)) as proxied:
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
            await once_back(lambda: proxied.publish(topic, b"after", {}), within=20)
            await eventually(lambda: len(inbox.messages) >= 3, within=30)
            await asyncio.sleep(0.5)
            assert sorted(inbox.data()) == [b"after", b"before", b"published elsewhere"]
            await proxied.ping()
            await subscription.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", proxied_cases(), indirect=True)
async def test_closing_while_the_broker_is_unreachable_returns_in_time(
    new_broker: Build, case: Case, topic: str
) -> None:
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        cut_away = new_broker(**case.via_proxy(proxy.port))
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


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", proxied_cases(), indirect=True)
async def test_unreachable_broker_fails_init_with_unavailable(
    new_broker: Build, case: Case
) -> None:
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(Unavailable):
            async with new_broker(**case.via_proxy(proxy.port)):
                pass
        assert time.monotonic() - started < 3 + 2
