"""The Layotto PubSubRpcs mixin served by a real grpc.aio server (no sidecar process)."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.pubsub import PubSubCapability
from pylotto.components.pubsub.base import Message
from pylotto.config.model import AppConfig
from pylotto.facades.interceptors import ErrorMapping, Interceptors
from pylotto.facades.layotto.pubsub import PubSubRpcs
from pylotto.proto.layotto import appcallback_pb2, runtime_pb2, runtime_pb2_grpc
from tests.unit.pubsub.helpers import FAST_RETRY, broker, eventually

Status = appcallback_pb2.TopicEventResponse


class FakeRuntime:
    def __init__(self, pubsub: PubSubCapability) -> None:
        self.pubsub = pubsub


class Servicer(PubSubRpcs, runtime_pb2_grpc.RuntimeServicer):
    def __init__(self, runtime: FakeRuntime) -> None:
        self.services = runtime  # type: ignore[assignment]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Any, PubSubCapability]]:
    context = RuntimeContext(AppConfig(app_id="facade"), tmp_path)
    mem = await broker(tmp_path, **FAST_RETRY)
    pubsub = PubSubCapability(ComponentSet("pubsub", {"mem": mem}), context)
    server = grpc.aio.server(interceptors=[Interceptors(ErrorMapping())])
    runtime_pb2_grpc.add_RuntimeServicer_to_server(Servicer(FakeRuntime(pubsub)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield runtime_pb2_grpc.RuntimeStub(channel), pubsub
    await pubsub.stop()
    await channel.close()
    await server.stop(None)
    await mem.close()


def initial(pubsub_name: str = "mem", topic: str = "orders") -> Any:
    return runtime_pb2.SubscribeTopicEventsRequest(
        initial_request=runtime_pb2.SubscribeTopicEventsRequestInitial(
            pubsub_name=pubsub_name, topic=topic
        )
    )


def processed(event_id: str, status: int) -> Any:
    return runtime_pb2.SubscribeTopicEventsRequest(
        event_processed=runtime_pb2.SubscribeTopicEventsRequestProcessed(
            id=event_id, status=appcallback_pb2.TopicEventResponse(status=status)
        )
    )


async def test_publish_event_with_traceparent(
    served: tuple[Any, PubSubCapability],
) -> None:
    stub, pubsub = served
    got: list[Message] = []

    async def handle(message: Message) -> None:
        got.append(message)

    await pubsub.components.get("mem").subscribe("orders", handle, {"consumerID": "spy"})
    await stub.PublishEvent(
        runtime_pb2.PublishEventRequest(
            pubsub_name="mem", topic="orders", data=b"hi", metadata={"key": "k"}
        ),
        metadata=(("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),),
    )
    await eventually(lambda: len(got) == 1)
    envelope = json.loads(got[0].data)
    assert envelope["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert envelope["source"] == "facade"
    assert envelope["data"] == "hi"
    assert got[0].metadata == {"key": "k"}


async def test_publish_event_errors(served: tuple[Any, PubSubCapability]) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.PublishEvent(runtime_pb2.PublishEventRequest(topic="t"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "pubsub name is empty"


async def test_subscribe_topic_events(served: tuple[Any, PubSubCapability]) -> None:
    stub, _ = served
    call = stub.SubscribeTopicEvents()
    await call.write(initial())
    first = await call.read()
    assert first.HasField("initial_response")
    await stub.PublishEvent(
        runtime_pb2.PublishEventRequest(pubsub_name="mem", topic="orders", data=b"one")
    )
    event = (await call.read()).event_message
    assert (event.data, event.topic, event.pubsub_name, event.source) == (
        b"one", "orders", "mem", "facade"
    )
    await call.write(processed(event.id, Status.RETRY))
    again = (await call.read()).event_message
    assert again.id == event.id
    await call.write(processed(again.id, Status.SUCCESS))
    await call.done_writing()
    assert await call.read() == grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_stream_needs_initial_request(served: tuple[Any, PubSubCapability]) -> None:
    stub, _ = served
    call = stub.SubscribeTopicEvents()
    await call.write(processed("x", 0))
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.UNKNOWN  # a plain error in daprd and Layotto
    assert await call.details() == "initial request is required"


async def test_stream_refuses_a_second_initial_request(
    served: tuple[Any, PubSubCapability],
) -> None:
    stub, _ = served
    call = stub.SubscribeTopicEvents()
    await call.write(initial())
    assert (await call.read()).HasField("initial_response")
    await call.write(initial())
    assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "only event_processed" in await call.details()


async def test_stream_on_unknown_pubsub(served: tuple[Any, PubSubCapability]) -> None:
    stub, _ = served
    call = stub.SubscribeTopicEvents()
    await call.write(initial("ghost"))
    assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await call.details() == "pubsub ghost is not found"


async def test_cancelled_stream_redelivers_to_the_next(
    served: tuple[Any, PubSubCapability],
) -> None:
    stub, pubsub = served
    call = stub.SubscribeTopicEvents()
    await call.write(initial())
    await call.read()
    await stub.PublishEvent(
        runtime_pb2.PublishEventRequest(pubsub_name="mem", topic="orders", data=b"held")
    )
    held = (await call.read()).event_message
    call.cancel()
    await eventually(lambda: pubsub.open_streams == 0)
    second = stub.SubscribeTopicEvents()
    await second.write(initial())
    await second.read()
    redelivered = (await asyncio.wait_for(second.read(), 5)).event_message
    assert redelivered.id == held.id
    await second.write(processed(redelivered.id, Status.SUCCESS))
    await second.done_writing()
    assert await second.read() == grpc.aio.EOF


async def test_stop_ends_open_streams(served: tuple[Any, PubSubCapability]) -> None:
    stub, pubsub = served
    call = stub.SubscribeTopicEvents()
    await call.write(initial())
    await call.read()
    await pubsub.stop()
    assert await asyncio.wait_for(call.read(), 5) == grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
