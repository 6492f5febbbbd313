"""Dead-letter topics as Dapr's runtime sends to them: a delivery that fails (an error, a RETRY
verdict) once its inbound resiliency policy is spent, a DROP, an expired event, an event no
route matches: published unchanged to the dead-letter topic and acknowledged. Without a
dead-letter topic a failure goes back to the broker, which redelivers."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pylotto.appchannel import cloudevents
from pylotto.appchannel.base import DeliveryStatus, RouteRule, TopicEvent, TopicSubscription
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.pubsub import PublishRequest, PubSubCapability
from pylotto.components.pubsub.base import Message
from pylotto.config.model import AppConfig
from pylotto.core.errors import Unavailable
from pylotto.core.resiliency import Resiliency, ResiliencyConfig
from tests.unit.pubsub.helpers import FAST_RETRY, broker, eventually, settle
from tests.unit.pubsub.test_capability import FakeChannel, Verdict

DEAD = "orders-dead"


class DeadInbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)


async def setup(tmp_path: Path, verdict: Verdict, *, subscription: TopicSubscription | None = None,
                resiliency: dict[str, object] | None = None
                ) -> tuple[PubSubCapability, FakeChannel, DeadInbox]:
    channel = FakeChannel([subscription or TopicSubscription("mem", "orders",
                                                             dead_letter_topic=DEAD)], verdict)
    channel.drops_unmatched = True  # as Dapr's app channels
    mem = await broker(tmp_path, **FAST_RETRY)
    dead = DeadInbox()
    await mem.subscribe(DEAD, dead, {})
    pubsub = PubSubCapability(
        ComponentSet("pubsub", {"mem": mem}),
        RuntimeContext(AppConfig(app_id="myapp"), tmp_path), app_channel=channel,
        resiliency=Resiliency(ResiliencyConfig.model_validate(resiliency or {})))
    await pubsub.start()
    return pubsub, channel, dead


async def publish(pubsub: PubSubCapability, **kw: object) -> None:
    await pubsub.publish(PublishRequest("mem", "orders", b"hi", "text/plain",
                                        **kw))  # type: ignore[arg-type]


def failing(error: Exception | None) -> Verdict:
    def verdict(event: TopicEvent, seen: int) -> DeliveryStatus:
        if error is not None:
            raise error
        return DeliveryStatus.RETRY
    return verdict


async def test_a_retry_verdict_goes_to_the_dead_letter_topic_at_once(tmp_path: Path) -> None:
    pubsub, channel, dead = await setup(tmp_path, failing(None))
    await publish(pubsub)
    await eventually(lambda: len(dead.messages) == 1)
    await settle(0.2)
    assert len(channel.events) == 1, "no policy: one attempt, no redelivery"
    envelope = json.loads(dead.messages[0].data)
    assert envelope["id"] == channel.events[0].id and envelope["topic"] == "orders"
    assert envelope["data"] == "hi" and envelope["pubsubname"] == "mem"
    await pubsub.stop()


async def test_a_dead_letter_carries_the_metadata_and_the_pubsub_name(tmp_path: Path) -> None:
    pubsub, _, dead = await setup(tmp_path, failing(None))
    await publish(pubsub, metadata={"tenant": "acme"})
    await eventually(lambda: len(dead.messages) == 1)
    # daprd publishes the message's metadata plus pubsubName (pkg/runtime/subscription)
    assert dead.messages[0].metadata == {"tenant": "acme", "pubsubName": "mem"}
    await pubsub.stop()


async def test_an_error_goes_to_the_dead_letter_topic(tmp_path: Path) -> None:
    pubsub, channel, dead = await setup(tmp_path, failing(Unavailable("app down")))
    await publish(pubsub)
    await eventually(lambda: len(dead.messages) == 1)
    await settle(0.2)
    assert len(channel.events) == 1
    await pubsub.stop()


async def test_the_inbound_retry_policy_runs_before_the_dead_letter(tmp_path: Path) -> None:
    policy = {"policies": {"retries": {"three": {"policy": "constant", "duration": "10ms",
                                                 "maxRetries": 3}}},
              "targets": {"components": {"mem": {"inbound": {"retry": "three"}}}}}
    pubsub, channel, dead = await setup(tmp_path, failing(None), resiliency=policy)
    await publish(pubsub)
    await eventually(lambda: len(dead.messages) == 1)
    await settle(0.2)
    assert len(channel.events) == 4, "one attempt and three retries"
    await pubsub.stop()


async def test_the_inbound_retry_policy_can_succeed(tmp_path: Path) -> None:
    policy = {"policies": {"retries": {"three": {"policy": "constant", "duration": "10ms",
                                                 "maxRetries": 3}}},
              "targets": {"components": {"mem": {"inbound": {"retry": "three"}}}}}

    def twice(event: TopicEvent, seen: int) -> DeliveryStatus:
        return DeliveryStatus.RETRY if seen < 2 else DeliveryStatus.SUCCESS

    pubsub, channel, dead = await setup(tmp_path, twice, resiliency=policy)
    await publish(pubsub)
    await eventually(lambda: len(channel.events) == 3)
    await settle(0.2)
    assert dead.messages == [] and len(channel.events) == 3
    await pubsub.stop()


async def test_drop_expired_and_unrouted_events_are_dead_lettered(tmp_path: Path) -> None:
    routed = TopicSubscription("mem", "orders", rules=(RouteRule('event.type == "x"', "/x"),),
                               dead_letter_topic=DEAD)
    pubsub, channel, dead = await setup(tmp_path, lambda e, s: DeliveryStatus.DROP,
                                        subscription=routed)
    await publish(pubsub)  # the default type: no rule, no default route
    await eventually(lambda: len(dead.messages) == 1)
    assert channel.events == []
    envelope = json.loads(cloudevents.encode(cloudevents.new_envelope(
        b"late", "text/plain", topic="orders", pubsub_name="mem", source="x",
        event_type="x")))
    envelope[cloudevents.EXPIRATION] = "2000-01-01T00:00:00Z"
    await pubsub.publish(PublishRequest("mem", "orders", json.dumps(envelope).encode(),
                                        cloudevents.CLOUDEVENT_CONTENT_TYPE))
    await eventually(lambda: len(dead.messages) == 2)
    assert channel.events == []
    envelope.pop(cloudevents.EXPIRATION)
    await pubsub.publish(PublishRequest("mem", "orders", json.dumps(envelope).encode(),
                                        cloudevents.CLOUDEVENT_CONTENT_TYPE))
    await eventually(lambda: len(dead.messages) == 3)
    assert len(channel.events) == 1, "routed, then DROPped by the app"
    await pubsub.stop()


async def test_without_a_dead_letter_topic_the_broker_redelivers(tmp_path: Path) -> None:
    started = time.monotonic()

    def until_third(event: TopicEvent, seen: int) -> DeliveryStatus:
        return DeliveryStatus.RETRY if seen < 2 else DeliveryStatus.SUCCESS

    pubsub, channel, dead = await setup(tmp_path, until_third,
                                        subscription=TopicSubscription("mem", "orders"))
    await publish(pubsub)
    await eventually(lambda: len(channel.events) == 3)
    await settle(0.2)
    assert len(channel.events) == 3 and dead.messages == []
    assert time.monotonic() - started < 3
    await pubsub.stop()
