"""The Layotto AppCallback channel against a real grpc.aio server in this process."""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from pylotto.appchannel.base import DeliveryStatus, TopicEvent, TopicSubscription
from pylotto.appchannel.layotto_grpc import LayottoGrpcAppChannel
from pylotto.appchannel.select import pubsub_channel
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.pubsub import DiscoveryPolicy, PublishRequest, PubSubCapability
from pylotto.config.model import AppConfig
from pylotto.core.errors import DeadlineExceeded, Internal, Unavailable, Unsupported
from pylotto.proto.layotto import appcallback_pb2, appcallback_pb2_grpc
from tests.support.ports import free_port
from tests.unit.pubsub.helpers import FAST_RETRY, broker, eventually, settle

Status = appcallback_pb2.TopicEventResponse

Answer = Callable[[appcallback_pb2.TopicEventRequest, int], Any]
"""(request, times this id was seen before) → a TopicEventResponse status value."""


@dataclass
class App(appcallback_pb2_grpc.AppCallbackServicer):
    subscriptions: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    answer: Answer = lambda request, seen: Status.SUCCESS
    delay: float = 0.0
    received: list[appcallback_pb2.TopicEventRequest] = field(default_factory=list)

    async def ListTopicSubscriptions(
        self, request: empty_pb2.Empty, context: Any
    ) -> appcallback_pb2.ListTopicSubscriptionsResponse:
        return appcallback_pb2.ListTopicSubscriptionsResponse(
            subscriptions=[
                appcallback_pb2.TopicSubscription(pubsub_name=p, topic=t, metadata=m)
                for p, t, m in self.subscriptions
            ]
        )

    async def OnTopicEvent(
        self, request: appcallback_pb2.TopicEventRequest, context: Any
    ) -> appcallback_pb2.TopicEventResponse:
        seen = sum(1 for r in self.received if r.id == request.id)
        self.received.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        return appcallback_pb2.TopicEventResponse(status=self.answer(request, seen))


class Unimplemented(appcallback_pb2_grpc.AppCallbackServicer):
    """Implements nothing: every call answers UNIMPLEMENTED."""


async def serve(servicer: Any) -> tuple[Any, int]:
    server = grpc.aio.server()
    appcallback_pb2_grpc.add_AppCallbackServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


@pytest.fixture
async def app() -> AsyncIterator[tuple[App, int]]:
    servicer = App(subscriptions=[("mem", "orders", {"key": "v"})])
    server, port = await serve(servicer)
    yield servicer, port
    await server.stop(None)


EVENT = TopicEvent(
    id="e1", source="src", type="typ", spec_version="1.0", data_content_type="text/plain",
    topic="orders", pubsub_name="mem", data=b"hello", metadata={"k": "v"},
)


async def test_list_subscriptions(app: tuple[App, int]) -> None:
    channel = LayottoGrpcAppChannel("127.0.0.1", app[1])
    assert await channel.list_subscriptions() == [TopicSubscription("mem", "orders", {"key": "v"})]
    await channel.close()


@pytest.mark.parametrize(
    ("status", "expected"),
    [(Status.SUCCESS, DeliveryStatus.SUCCESS), (Status.RETRY, DeliveryStatus.RETRY),
     (Status.DROP, DeliveryStatus.DROP)],
)
async def test_deliver_maps_the_status(
    app: tuple[App, int], status: int, expected: DeliveryStatus
) -> None:
    servicer, port = app
    servicer.answer = lambda request, seen: status
    channel = LayottoGrpcAppChannel("127.0.0.1", port)
    assert await channel.deliver(EVENT) is expected
    request = servicer.received[0]
    assert (request.id, request.source, request.type, request.spec_version) == (
        "e1", "src", "typ", "1.0"
    )
    assert (request.data_content_type, request.topic, request.pubsub_name, request.data) == (
        "text/plain", "orders", "mem", b"hello"
    )
    assert dict(request.metadata) == {"k": "v"}
    await channel.close()


async def test_unknown_status_is_an_error(app: tuple[App, int]) -> None:
    servicer, port = app
    servicer.answer = lambda request, seen: 7
    channel = LayottoGrpcAppChannel("127.0.0.1", port)
    with pytest.raises(Internal, match="unknown status 7"):
        await channel.deliver(EVENT)
    await channel.close()


async def test_unimplemented_is_unsupported() -> None:
    server, port = await serve(Unimplemented())
    channel = LayottoGrpcAppChannel("127.0.0.1", port)
    with pytest.raises(Unsupported, match="OnTopicEvent is not implemented"):
        await channel.deliver(EVENT)
    with pytest.raises(Unsupported):
        await channel.list_subscriptions()
    await channel.close()
    await server.stop(None)


async def test_unreachable_app_is_unavailable() -> None:
    channel = LayottoGrpcAppChannel("127.0.0.1", free_port())
    with pytest.raises(Unavailable, match="app unavailable"):
        await channel.deliver(EVENT)
    with pytest.raises(Unavailable):
        await channel.list_subscriptions()
    await channel.close()


async def test_slow_app_is_deadline_exceeded(app: tuple[App, int]) -> None:
    servicer, port = app
    servicer.delay = 0.5
    channel = LayottoGrpcAppChannel("127.0.0.1", port, delivery_timeout=0.05)
    with pytest.raises(DeadlineExceeded):
        await channel.deliver(EVENT)
    await channel.close()


def pubsub_for(tmp_path: Path, port: int, components: dict[str, Any]) -> PubSubCapability:
    context = RuntimeContext(
        AppConfig(app_id="subapp", grpc_callback_port=port), tmp_path
    )
    return PubSubCapability(
        ComponentSet("pubsub", components), context, app_channel=pubsub_channel(context.app),
        discovery=DiscoveryPolicy(initial_interval=0.02, max_interval=0.05, window=5),
    )


async def test_capability_subscribes_through_list_topic_subscriptions(
    tmp_path: Path, app: tuple[App, int]
) -> None:
    servicer, port = app
    servicer.answer = lambda request, seen: Status.RETRY if seen == 0 else Status.SUCCESS
    pubsub = pubsub_for(tmp_path, port, {"mem": await broker(tmp_path, **FAST_RETRY)})
    assert pubsub.app_channel is not None
    assert pubsub.app_channel.description == f"app callback at 127.0.0.1:{port}"
    await pubsub.start()
    assert set(pubsub.app_subscriptions) == {("mem", "orders")}
    await pubsub.publish(PublishRequest("mem", "orders", b'{"a":1}', "application/json"))
    await eventually(lambda: len(servicer.received) == 2)
    await settle(0.1)
    first, second = servicer.received
    assert len(servicer.received) == 2  # RETRY, then SUCCESS, then nothing more
    assert first == second
    assert first.source == "subapp"
    assert first.type == "com.dapr.event.sent"
    assert first.data == b'{"a":1}'
    assert first.pubsub_name == "mem"
    await pubsub.stop()


async def test_app_started_after_the_sidecar(tmp_path: Path) -> None:
    port = free_port()
    pubsub = pubsub_for(tmp_path, port, {"mem": await broker(tmp_path)})
    await pubsub.start()
    assert pubsub.app_subscriptions == {}
    servicer = App(subscriptions=[("mem", "orders", {})])
    server = grpc.aio.server()
    appcallback_pb2_grpc.add_AppCallbackServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await eventually(lambda: ("mem", "orders") in pubsub.app_subscriptions, within=10)
    await pubsub.publish(PublishRequest("mem", "orders", b"late"))
    await eventually(lambda: [r.data for r in servicer.received] == [b"late"])
    await pubsub.stop()
    await server.stop(None)
