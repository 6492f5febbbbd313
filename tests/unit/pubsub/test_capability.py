import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pylotto.appchannel import cloudevents
from pylotto.appchannel.base import AppChannel, DeliveryStatus, TopicEvent, TopicSubscription
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.pubsub import DiscoveryPolicy, PublishRequest, PubSubCapability
from pylotto.components.pubsub.base import Message, PubSub
from pylotto.components.pubsub.memory import InMemoryPubSub
from pylotto.config.model import AppConfig
from pylotto.core.errors import (
    ComponentNotFound,
    Internal,
    InvalidArgument,
    NotConfigured,
    PylottoError,
    Unavailable,
    Unsupported,
)
from pylotto.core.types import Metadata
from tests.unit.pubsub.helpers import FAST_RETRY, broker, eventually, settle

Verdict = Callable[[TopicEvent, int], DeliveryStatus]
"""(event, how many times this event id was seen before) → status, or raise."""


class FakeChannel(AppChannel):
    description = "fake app"

    def __init__(
        self,
        subscriptions: list[TopicSubscription] | None = None,
        verdict: Verdict | None = None,
        list_errors: list[PylottoError] | None = None,
    ) -> None:
        self.subscriptions = subscriptions or []
        self.verdict = verdict or (lambda event, seen: DeliveryStatus.SUCCESS)
        self.list_errors = list(list_errors or [])
        self.list_calls = 0
        self.events: list[TopicEvent] = []
        self.closed = False

    async def list_subscriptions(self) -> list[TopicSubscription]:
        self.list_calls += 1
        if self.list_errors:
            raise self.list_errors.pop(0)
        return self.subscriptions

    async def deliver(self, event: TopicEvent) -> DeliveryStatus:
        seen = sum(1 for e in self.events if e.id == event.id)
        self.events.append(event)
        return self.verdict(event, seen)

    async def close(self) -> None:
        self.closed = True

    def ids(self) -> list[str]:
        return [e.id for e in self.events]


def capability(
    tmp_path: Path,
    components: dict[str, PubSub],
    channel: AppChannel | None = None,
    app_id: str = "myapp",
) -> PubSubCapability:
    context = RuntimeContext(AppConfig(app_id=app_id), tmp_path)
    return PubSubCapability(
        ComponentSet("pubsub", components), context, app_channel=channel,
        discovery=DiscoveryPolicy(initial_interval=0.01, max_interval=0.02, window=0.3),
    )


SUB = [TopicSubscription("mem", "orders")]


async def app_setup(
    tmp_path: Path, verdict: Verdict | None = None, **metadata: str
) -> tuple[PubSubCapability, FakeChannel]:
    channel = FakeChannel(SUB, verdict)
    mem = await broker(tmp_path, **{**FAST_RETRY, **metadata})
    pubsub = capability(tmp_path, {"mem": mem}, channel)
    await pubsub.start()
    return pubsub, channel


async def publish(pubsub: PubSubCapability, data: bytes = b"hi", **kw: object) -> None:
    await pubsub.publish(PublishRequest("mem", "orders", data, **kw))  # type: ignore[arg-type]


# ---- publish --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "topic", "error", "message"),
    [
        ("", "t", InvalidArgument, "pubsub name is empty"),
        ("mem", "", InvalidArgument, "topic is empty in pubsub mem"),
        ("nope", "t", ComponentNotFound, "pubsub nope is not found"),
    ],
)
async def test_publish_validation(
    tmp_path: Path, name: str, topic: str, error: type[PylottoError], message: str
) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)})
    with pytest.raises(error) as caught:
        await pubsub.publish(PublishRequest(name, topic, b"x"))
    assert caught.value.message == message


async def test_publish_without_any_pubsub(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {})
    with pytest.raises(NotConfigured, match="pubsub is not configured"):
        await pubsub.publish(PublishRequest("mem", "t", b"x"))


async def test_publish_wraps_in_a_cloudevent(tmp_path: Path) -> None:
    mem = await broker(tmp_path)
    got: list[Message] = []

    async def handle(message: Message) -> None:
        got.append(message)

    await mem.subscribe("orders", handle, {})
    pubsub = capability(tmp_path, {"mem": mem}, app_id="shop")
    await pubsub.publish(
        PublishRequest("mem", "orders", b'{"n":1}', "application/json", {"key": "k"},
                       trace_parent="00-aa-bb-01")
    )
    await eventually(lambda: len(got) == 1)
    envelope = json.loads(got[0].data)
    assert envelope["data"] == {"n": 1}
    assert envelope["source"] == "shop"
    assert envelope["type"] == "com.dapr.event.sent"
    assert envelope["specversion"] == "1.0"
    assert envelope["topic"] == "orders"
    assert envelope["pubsubname"] == "mem"
    assert envelope["traceparent"] == "00-aa-bb-01"
    assert "expiration" not in envelope
    assert got[0].metadata == {"key": "k"}
    await mem.close()


async def test_publish_cloudevent_content_type_passes_through(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)}, app_id="")
    mem = pubsub.components.get("mem")
    event = {"id": "e1", "source": "s", "type": "t", "specversion": "1.0", "data": "x",
             "topic": "other"}
    data = pubsub.envelope(
        PublishRequest("mem", "orders", json.dumps(event).encode(),
                       "application/cloudevents+json"),
        mem,
    )
    assert json.loads(data) == {**event, "topic": "orders", "pubsubname": "mem"}
    with pytest.raises(InvalidArgument, match="cannot create cloudevent"):
        pubsub.envelope(PublishRequest("mem", "orders", b"nope", "application/cloudevents+json"),
                        mem)


async def test_default_source_without_app_id(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)}, app_id="")
    data = pubsub.envelope(PublishRequest("mem", "t", b"x"), pubsub.components.get("mem"))
    assert json.loads(data)["source"] == "pylotto"


async def test_raw_payload_publish_has_no_envelope(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)})
    data = pubsub.envelope(
        PublishRequest("mem", "t", b"\x00raw", metadata={"rawPayload": "true"}),
        pubsub.components.get("mem"),
    )
    assert data == b"\x00raw"


async def test_ttl_becomes_expiration_unless_the_broker_expires(tmp_path: Path) -> None:
    class TtlBroker(InMemoryPubSub):
        features = frozenset({"MESSAGE_TTL"})

    plain = await broker(tmp_path)
    ttl_aware = TtlBroker("ttl", plain.settings, plain.context)
    pubsub = capability(tmp_path, {"mem": plain, "ttl": ttl_aware})
    request = PublishRequest("mem", "t", b"x", metadata={"ttlInSeconds": "60"})
    assert "expiration" in json.loads(pubsub.envelope(request, plain))
    assert "expiration" not in json.loads(pubsub.envelope(request, ttl_aware))
    with pytest.raises(InvalidArgument, match="ttlInSeconds"):
        await pubsub.publish(PublishRequest("mem", "t", b"x", metadata={"ttlInSeconds": "x"}))


class BrokenBroker(InMemoryPubSub):
    error: PylottoError = Unavailable("connection refused")

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [(Unavailable("connection refused"), Unavailable), (InvalidArgument("too big"), Internal)],
)
async def test_publish_failure(
    tmp_path: Path, error: PylottoError, expected: type[PylottoError]
) -> None:
    base = await broker(tmp_path)
    bad = BrokenBroker("mem", base.settings, base.context)
    bad.error = error
    pubsub = capability(tmp_path, {"mem": bad})
    with pytest.raises(expected) as caught:
        await pubsub.publish(PublishRequest("mem", "orders", b"x"))
    assert caught.value.message == (
        f"error when publish to topic orders in pubsub mem: {error.message}"
    )


# ---- delivery through the app channel ---------------------------------------------------------


async def test_start_subscribes_and_delivers_cloudevent_fields(tmp_path: Path) -> None:
    pubsub, channel = await app_setup(tmp_path)
    assert channel.list_calls == 1
    assert set(pubsub.app_subscriptions) == {("mem", "orders")}
    await publish(pubsub, b'{"a":1}', data_content_type="application/json",
                  metadata={"key": "k"})
    await eventually(lambda: len(channel.events) == 1)
    event = channel.events[0]
    assert event.data == b'{"a":1}'
    assert event.data_content_type == "application/json"
    assert (event.topic, event.pubsub_name) == ("orders", "mem")
    assert (event.source, event.type, event.spec_version) == (
        "myapp", "com.dapr.event.sent", "1.0"
    )
    assert event.metadata == {"key": "k"}
    await pubsub.stop()
    assert channel.closed


@pytest.mark.parametrize("status", [DeliveryStatus.SUCCESS, DeliveryStatus.DROP])
async def test_success_and_drop_ack(tmp_path: Path, status: DeliveryStatus) -> None:
    pubsub, channel = await app_setup(tmp_path, lambda event, seen: status)
    await publish(pubsub)
    await eventually(lambda: len(channel.events) == 1)
    await settle(0.1)
    assert len(channel.events) == 1
    await pubsub.stop()


async def test_drop_logs_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pubsub, channel = await app_setup(tmp_path, lambda event, seen: DeliveryStatus.DROP)
    with caplog.at_level(logging.WARNING, "pylotto.pubsub"):
        await publish(pubsub)
        await eventually(lambda: len(channel.events) == 1)
    assert f"DROP status returned for event {channel.events[0].id}" in caplog.text
    await pubsub.stop()


def retry_twice(event: TopicEvent, seen: int) -> DeliveryStatus:
    return DeliveryStatus.RETRY if seen < 2 else DeliveryStatus.SUCCESS


def fail_twice(event: TopicEvent, seen: int) -> DeliveryStatus:
    if seen < 2:
        raise Unavailable("app unreachable")
    return DeliveryStatus.SUCCESS


@pytest.mark.parametrize("verdict", [retry_twice, fail_twice])
async def test_retry_and_errors_redeliver_until_success(tmp_path: Path, verdict: Verdict) -> None:
    pubsub, channel = await app_setup(tmp_path, verdict)
    await publish(pubsub)
    await eventually(lambda: len(channel.events) == 3)
    await settle(0.1)
    assert len(set(channel.ids())) == 1  # the same event, redelivered
    assert len(channel.events) == 3
    await pubsub.stop()


async def test_unimplemented_drops(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def unsupported(event: TopicEvent, seen: int) -> DeliveryStatus:
        raise Unsupported("OnTopicEvent is not implemented by the app")

    pubsub, channel = await app_setup(tmp_path, unsupported)
    with caplog.at_level(logging.WARNING, "pylotto.pubsub"):
        await publish(pubsub)
        await eventually(lambda: len(channel.events) == 1)
        await settle(0.1)
    assert len(channel.events) == 1
    assert "dropped: OnTopicEvent is not implemented" in caplog.text
    await pubsub.stop()


async def test_failures_warn_once_then_note_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, "pylotto.pubsub"):
        pubsub, channel = await app_setup(tmp_path, fail_twice)
        await publish(pubsub)
        await eventually(lambda: len(channel.events) == 3)
        await settle()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "app unreachable" in warnings[0].getMessage()
    assert "deliveries succeed again" in caplog.text
    await pubsub.stop()


async def test_expired_events_are_dropped(tmp_path: Path) -> None:
    pubsub, channel = await app_setup(tmp_path)
    mem = pubsub.components.get("mem")
    stale = cloudevents.new_envelope(b"old", "", topic="orders", pubsub_name="mem")
    stale["expiration"] = "2000-01-01T00:00:00Z"
    await mem.publish("orders", cloudevents.encode(stale), {})
    await publish(pubsub, b"fresh", metadata={"ttlInSeconds": "60"})
    await eventually(lambda: len(channel.events) == 1)
    await settle()
    assert [e.data for e in channel.events] == [b"fresh"]
    await pubsub.stop()


async def test_raw_payload_subscription(tmp_path: Path) -> None:
    channel = FakeChannel([TopicSubscription("mem", "orders", {"rawPayload": "true"})])
    mem = await broker(tmp_path)
    pubsub = capability(tmp_path, {"mem": mem}, channel)
    await pubsub.start()
    await mem.publish("orders", b"\x01\x02", {})
    await eventually(lambda: len(channel.events) == 1)
    assert channel.events[0].data == b"\x01\x02"
    assert channel.events[0].data_content_type == "application/octet-stream"
    await pubsub.stop()


async def test_unknown_pubsub_in_app_subscriptions_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    channel = FakeChannel([TopicSubscription("ghost", "t"), *SUB, TopicSubscription("mem", "")])
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)}, channel)
    with caplog.at_level(logging.WARNING, "pylotto.pubsub"):
        await pubsub.start()
    assert set(pubsub.app_subscriptions) == {("mem", "orders")}
    assert "pubsub ghost is not found" in caplog.text
    await pubsub.stop()


async def test_no_callback_port_means_no_channel(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)})
    assert pubsub.app_channel is None
    await pubsub.start()
    assert pubsub.app_subscriptions == {}
    await pubsub.stop()


async def test_app_not_up_yet_is_retried_in_the_background(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    channel = FakeChannel(SUB, list_errors=[Unavailable("refused"), Unavailable("refused")])
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)}, channel)
    with caplog.at_level(logging.WARNING, "pylotto.pubsub"):
        await pubsub.start()  # returns at once
    assert pubsub.app_subscriptions == {}
    assert "not reachable yet" in caplog.text
    await eventually(lambda: ("mem", "orders") in pubsub.app_subscriptions)
    assert channel.list_calls == 3
    await pubsub.stop()


async def test_background_discovery_gives_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    channel = FakeChannel(SUB, list_errors=[Unavailable("refused")] * 1000)
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)}, channel)
    with caplog.at_level(logging.ERROR, "pylotto.pubsub"):
        await pubsub.start()
        await eventually(lambda: "still not reachable" in caplog.text)
    assert pubsub.app_subscriptions == {}
    await pubsub.stop()


async def test_app_without_pubsub_handler(tmp_path: Path) -> None:
    channel = FakeChannel(SUB, list_errors=[Unsupported("not implemented")])
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)}, channel)
    await pubsub.start()
    assert pubsub.app_subscriptions == {}
    assert channel.list_calls == 1
    await pubsub.stop()


async def test_stop_lets_in_flight_deliveries_finish(tmp_path: Path) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    class SlowChannel(FakeChannel):
        async def deliver(self, event: TopicEvent) -> DeliveryStatus:
            started.set()
            await asyncio.sleep(0.1)
            finished.append(event.id)
            return DeliveryStatus.SUCCESS

    channel = SlowChannel(SUB)
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)}, channel)
    await pubsub.start()
    await publish(pubsub)
    await started.wait()
    await pubsub.stop()
    assert len(finished) == 1
    assert pubsub.app_subscriptions == {}


# ---- subscriber streams ---------------------------------------------------------------------


async def next_event(events: AsyncIterator[TopicEvent]) -> TopicEvent:
    async with asyncio.timeout(2.0):
        return await anext(events)


async def test_stream_validation(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)})
    with pytest.raises(InvalidArgument, match="pubsubName is required"):
        await pubsub.subscribe_stream("", "t", {})
    with pytest.raises(InvalidArgument, match="topic is required"):
        await pubsub.subscribe_stream("mem", "", {})
    with pytest.raises(ComponentNotFound):
        await pubsub.subscribe_stream("x", "t", {})


async def test_stream_delivers_and_acks(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path, **FAST_RETRY)})
    stream = await pubsub.subscribe_stream("mem", "orders", {})
    events = aiter(stream.events())
    await publish(pubsub, b"one")
    first = await next_event(events)
    assert first.data == b"one"
    stream.ack(first.id, DeliveryStatus.RETRY)
    again = await next_event(events)
    assert again.id == first.id
    stream.ack(again.id, 7)  # unknown status: redelivered too
    third = await next_event(events)
    assert third.id == first.id
    stream.ack(third.id, DeliveryStatus.SUCCESS)
    await eventually(lambda: stream.in_flight == 0)
    await stream.close()
    await pubsub.stop()


async def test_stream_close_redelivers_unanswered_events(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path, **FAST_RETRY)})
    first = await pubsub.subscribe_stream("mem", "orders", {})
    events = aiter(first.events())
    await publish(pubsub, b"x")
    held = await next_event(events)
    await first.close()
    with pytest.raises(StopAsyncIteration):
        await next_event(events)
    second = await pubsub.subscribe_stream("mem", "orders", {})
    redelivered = await next_event(aiter(second.events()))
    assert redelivered.id == held.id
    second.ack(redelivered.id, DeliveryStatus.SUCCESS)
    await second.close()
    await pubsub.stop()


async def test_two_streams_share_a_topic(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)})
    streams = [await pubsub.subscribe_stream("mem", "orders", {}) for _ in range(2)]
    got: dict[int, list[bytes]] = {0: [], 1: []}

    async def consume(index: int) -> None:
        async for event in streams[index].events():
            got[index].append(event.data)
            await asyncio.sleep(0.005)
            streams[index].ack(event.id, DeliveryStatus.SUCCESS)

    consumers = [asyncio.create_task(consume(i)) for i in range(2)]
    for i in range(20):
        await publish(pubsub, str(i).encode())
    await eventually(lambda: len(got[0]) + len(got[1]) == 20)
    assert sorted(got[0] + got[1], key=int) == [str(i).encode() for i in range(20)]
    assert got[0] and got[1]
    await pubsub.stop()
    await asyncio.gather(*consumers)


async def test_stream_back_pressure(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path, maxConcurrentHandlers="2")})
    stream = await pubsub.subscribe_stream("mem", "orders", {})
    for i in range(5):
        await publish(pubsub, bytes([i]))
    events = aiter(stream.events())
    a, b = await next_event(events), await next_event(events)
    third = asyncio.ensure_future(next_event(events))
    done, _ = await asyncio.wait({third}, timeout=0.1)
    assert not done  # two unanswered events: nothing more is sent
    assert stream.in_flight == 2
    stream.ack(a.id, DeliveryStatus.SUCCESS)
    c = await third
    assert [a.data, b.data, c.data] == [b"\x00", b"\x01", b"\x02"]
    await stream.close()  # two events in flight: redelivered later, no drain wait
    await pubsub.stop()


async def test_stream_verdict_for_unknown_id_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)})
    stream = await pubsub.subscribe_stream("mem", "orders", {})
    with caplog.at_level(logging.WARNING, "pylotto.pubsub"):
        stream.ack("nope", DeliveryStatus.SUCCESS)
    assert "verdict for unknown event 'nope' ignored" in caplog.text
    await pubsub.stop()


async def test_stop_drains_streams_then_ends_them(tmp_path: Path) -> None:
    pubsub = capability(tmp_path, {"mem": await broker(tmp_path)})
    stream = await pubsub.subscribe_stream("mem", "orders", {})
    events = aiter(stream.events())
    await publish(pubsub)
    held = await next_event(events)
    stopping = asyncio.create_task(pubsub.stop())
    await settle()
    assert not stopping.done()  # waiting for the subscriber's answer
    stream.ack(held.id, DeliveryStatus.SUCCESS)
    await asyncio.wait_for(stopping, 2)
    with pytest.raises(StopAsyncIteration):
        await next_event(events)
    with pytest.raises(Unavailable, match="shutting down"):
        await pubsub.subscribe_stream("mem", "orders", {})


async def test_stop_cancels_deliveries_that_outlast_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("pylotto.capabilities.pubsub.STOP_TIMEOUT_SECONDS", 0.1)
    started = asyncio.Event()

    class HangingChannel(FakeChannel):
        async def deliver(self, event: TopicEvent) -> DeliveryStatus:
            started.set()
            await asyncio.sleep(3600)
            return DeliveryStatus.SUCCESS

    mem = await broker(tmp_path)
    pubsub = capability(tmp_path, {"mem": mem}, HangingChannel(SUB))
    await pubsub.start()
    await publish(pubsub)
    await started.wait()
    with caplog.at_level(logging.WARNING, "pylotto.pubsub"):
        await asyncio.wait_for(pubsub.stop(), 2)
    assert "deliveries still in flight after" in caplog.text
    assert mem.groups("orders")["app"].backlog == 1  # handed back to the broker
