"""Bulk subscribe batching and per-entry verdicts (capabilities/bulk_delivery.py) over the
in-memory broker, with an app channel that records each bulk call; and unreadable messages,
dead-lettered or redelivered as Dapr does."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pylotto.appchannel.base import (
    BulkEntry,
    BulkSubscribe,
    DeliveryStatus,
    RouteRule,
    TopicSubscription,
)
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.pubsub import PublishRequest, PubSubCapability
from pylotto.components.pubsub.base import Message
from pylotto.config.model import AppConfig
from pylotto.core.errors import InvalidArgument, Unavailable
from tests.unit.pubsub.helpers import FAST_RETRY, broker, eventually, settle
from tests.unit.pubsub.test_capability import FakeChannel

BulkVerdict = Callable[[BulkEntry, int], DeliveryStatus]
"""(entry, times its event was seen before) → status."""


class BulkChannel(FakeChannel):
    supports_bulk = True
    drops_unmatched = True

    def __init__(self, subscriptions: list[TopicSubscription],
                 verdict: BulkVerdict | None = None, fail_calls: int = 0) -> None:
        super().__init__(subscriptions)
        self.bulk_verdict = verdict or (lambda entry, seen: DeliveryStatus.SUCCESS)
        self.calls: list[tuple[str, list[BulkEntry], float]] = []
        self.fail_calls = fail_calls

    async def deliver_bulk(self, entries: Sequence[BulkEntry], path: str, *,
                           raw: bool = False) -> dict[str, DeliveryStatus]:
        self.calls.append((path, list(entries), time.monotonic()))
        if self.fail_calls:
            self.fail_calls -= 1
            raise Unavailable("app down")
        answers = {}
        for entry in entries:
            seen = sum(1 for _, batch, _ in self.calls[:-1] for e in batch
                       if e.event.id == entry.event.id)
            answers[entry.entry_id] = self.bulk_verdict(entry, seen)
        return answers

    def data(self, call: int) -> list[str]:
        return [e.event.data.decode() for e in self.calls[call][1]]


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)


async def setup(tmp_path: Path, channel: BulkChannel, **metadata: str) -> PubSubCapability:
    mem = await broker(tmp_path, **{**FAST_RETRY, **metadata})
    pubsub = PubSubCapability(ComponentSet("pubsub", {"mem": mem}),
                              RuntimeContext(AppConfig(app_id="myapp"), tmp_path),
                              app_channel=channel)
    await pubsub.start()
    return pubsub


def bulk_sub(max_messages: int = 10, max_await_ms: int = 100, **kw: object
             ) -> TopicSubscription:
    return TopicSubscription("mem", "orders", bulk=BulkSubscribe(max_messages, max_await_ms),
                             **kw)  # type: ignore[arg-type]


async def publish(pubsub: PubSubCapability, *payloads: str, topic: str = "orders") -> None:
    for payload in payloads:
        await pubsub.publish(PublishRequest("mem", topic, payload.encode(), "text/plain"))


async def test_a_full_batch_goes_at_once(tmp_path: Path) -> None:
    channel = BulkChannel([bulk_sub(max_messages=3, max_await_ms=5000)])
    pubsub = await setup(tmp_path, channel)
    started = time.monotonic()
    await publish(pubsub, "a", "b", "c")
    await eventually(lambda: len(channel.calls) == 1)
    assert sorted(channel.data(0)) == ["a", "b", "c"]
    assert time.monotonic() - started < 2, "no wait for maxAwaitDurationMs"
    await pubsub.stop()


async def test_a_partial_batch_goes_after_the_await(tmp_path: Path) -> None:
    channel = BulkChannel([bulk_sub(max_messages=10, max_await_ms=300)])
    pubsub = await setup(tmp_path, channel)
    started = time.monotonic()
    await publish(pubsub, "a", "b")
    await eventually(lambda: len(channel.calls) == 1)
    assert sorted(channel.data(0)) == ["a", "b"]
    assert channel.calls[0][2] - started >= 0.25
    entry_ids = {e.entry_id for e in channel.calls[0][1]}
    assert len(entry_ids) == 2 and all(entry_ids), "each entry has an id of its own"
    await pubsub.stop()


async def test_batches_never_exceed_the_messages_in_flight(tmp_path: Path) -> None:
    channel = BulkChannel([bulk_sub(max_messages=100, max_await_ms=5000)])
    pubsub = await setup(tmp_path, channel, maxConcurrentHandlers="4")
    await publish(pubsub, *"abcdefgh")
    await eventually(lambda: sum(len(c[1]) for c in channel.calls) == 8, within=3)
    assert [len(c[1]) for c in channel.calls] == [4, 4]
    await pubsub.stop()


async def test_each_entry_gets_its_own_verdict(tmp_path: Path) -> None:
    def verdict(entry: BulkEntry, seen: int) -> DeliveryStatus:
        text = entry.event.data.decode()
        if text == "drop":
            return DeliveryStatus.DROP
        if text == "retry" and seen == 0:
            return DeliveryStatus.RETRY
        return DeliveryStatus.SUCCESS

    channel = BulkChannel([bulk_sub(max_messages=3)], verdict)
    pubsub = await setup(tmp_path, channel)
    await publish(pubsub, "ok", "drop", "retry")
    await eventually(lambda: len(channel.calls) == 2)
    await settle(0.3)
    assert len(channel.calls) == 2
    assert channel.data(1) == ["retry"], "only the RETRY entry comes again"
    await pubsub.stop()


async def test_dead_letters_get_dropped_and_failed_entries(tmp_path: Path) -> None:
    def verdict(entry: BulkEntry, seen: int) -> DeliveryStatus:
        return {"drop": DeliveryStatus.DROP, "retry": DeliveryStatus.RETRY}.get(
            entry.event.data.decode(), DeliveryStatus.SUCCESS)

    channel = BulkChannel([bulk_sub(max_messages=3, dead_letter_topic="dead")], verdict)
    pubsub = await setup(tmp_path, channel)
    dead = Inbox()
    mem = pubsub.components.get("mem")
    await mem.subscribe("dead", dead, {})
    await publish(pubsub, "ok", "drop", "retry")
    await eventually(lambda: len(dead.messages) == 2)
    await settle(0.3)
    assert len(channel.calls) == 1
    assert sorted(json.loads(m.data)["data"] for m in dead.messages) == ["drop", "retry"]
    await pubsub.stop()


async def test_a_failed_call_is_redelivered_whole(tmp_path: Path) -> None:
    channel = BulkChannel([bulk_sub(max_messages=2)], fail_calls=1)
    pubsub = await setup(tmp_path, channel)
    await publish(pubsub, "a", "b")
    await eventually(lambda: sum(len(c[1]) for c in channel.calls) == 4)
    assert sorted(channel.data(0)) == ["a", "b"]
    assert sorted(e.event.data.decode() for c in channel.calls[1:] for e in c[1]) == ["a", "b"]
    await pubsub.stop()


async def test_routes_get_a_call_each(tmp_path: Path) -> None:
    rules = (RouteRule('event.data == "vip"', "/vip"),)
    channel = BulkChannel([bulk_sub(max_messages=3, rules=rules, default_path="/all")])
    pubsub = await setup(tmp_path, channel)
    await publish(pubsub, "vip", "std", "std")
    await eventually(lambda: len(channel.calls) == 2)
    calls = {path: sorted(e.event.data.decode() for e in entries)
             for path, entries, _ in channel.calls}
    assert calls == {"/vip": ["vip"], "/all": ["std", "std"]}
    await pubsub.stop()


async def test_a_channel_without_bulk_gets_events_one_by_one(tmp_path: Path) -> None:
    channel = BulkChannel([bulk_sub()])
    channel.supports_bulk = False
    pubsub = await setup(tmp_path, channel)
    await publish(pubsub, "a", "b")
    await eventually(lambda: len(channel.events) == 2)
    assert channel.calls == []
    await pubsub.stop()


UNREADABLE = json.dumps({"specversion": "1.0", "id": "bad", "source": "s", "type": "t",
                         "data_base64": "not base64!"}).encode()


async def test_an_unreadable_message_is_dead_lettered_or_redelivered(tmp_path: Path) -> None:
    channel = BulkChannel([TopicSubscription("mem", "orders", dead_letter_topic="dead")])
    pubsub = await setup(tmp_path, channel)
    mem = pubsub.components.get("mem")
    dead = Inbox()
    await mem.subscribe("dead", dead, {})
    await mem.publish("orders", UNREADABLE, {})
    await eventually(lambda: len(dead.messages) == 1)
    assert dead.messages[0].data == UNREADABLE, "dead-lettered unchanged"
    without = pubsub.handler("mem", "plain", {}, channel.deliver)
    with pytest.raises(InvalidArgument, match="data_base64"):  # raised: the broker redelivers
        await without(Message("plain", UNREADABLE))
    assert channel.events == [], "never handed to the app"
    await pubsub.stop()


def test_bulk_subscribe_is_read_from_subscribe_answers() -> None:
    from pylotto.appchannel.dapr_http import parse_subscriptions

    listed = parse_subscriptions([
        {"pubsubname": "p", "topic": "a", "route": "/a",
         "bulkSubscribe": {"enabled": True, "maxMessagesCount": 7, "maxAwaitDurationMs": 40}},
        {"pubsubname": "p", "topic": "b", "route": "/b",
         "bulkSubscribe": {"enabled": True, "maxMessagesCount": 0}},
        {"pubsubname": "p", "topic": "c", "route": "/c", "bulkSubscribe": {"enabled": False}},
    ])
    assert [s.bulk for s in listed] == [BulkSubscribe(7, 40), BulkSubscribe(100, 1000), None]


async def test_each_entry_gets_a_consumer_span_continuing_its_trace(tmp_path: Path) -> None:
    """As daprd's bulk delivery: a span per entry, in that entry's trace, for the call; the
    app gets each entry's own span as its traceparent."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from pylotto.observability.tracing import Tracing, TracingConfig

    exporter = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(sampling_rate=1.0, exporter="console"), "myapp")
    tracing._provider.add_span_processor(SimpleSpanProcessor(exporter))
    channel = BulkChannel([bulk_sub(max_messages=2, max_await_ms=5000)])
    mem = await broker(tmp_path, **FAST_RETRY)
    pubsub = PubSubCapability(ComponentSet("pubsub", {"mem": mem}),
                              RuntimeContext(AppConfig(app_id="myapp"), tmp_path),
                              app_channel=channel, tracing=tracing)
    await pubsub.start()
    traces = ["4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"]
    for n, trace_id in enumerate(traces):
        await pubsub.publish(PublishRequest("mem", "orders", f"e{n}".encode(), "text/plain",
                                            trace_parent=f"00-{trace_id}-b7ad6b7169203331-01"))
    await eventually(lambda: len(channel.calls) == 1)
    await pubsub.stop()
    spans = [s for s in exporter.get_finished_spans() if s.name == "deliver orders"]
    assert len(spans) == 2 and {s.kind for s in spans} == {SpanKind.CONSUMER}
    by_trace = {f"{s.context.trace_id:032x}": s for s in spans}
    assert set(by_trace) == set(traces)  # each in its own entry's trace, not nested
    for entry in channel.calls[0][1]:
        sent = str(entry.event.cloud_event["traceparent"])
        trace_id, span_id = sent.split("-")[1:3]
        assert f"{by_trace[trace_id].context.span_id:016x}" == span_id
    tracing.shutdown()
