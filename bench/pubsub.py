"""Scenario 3: PublishEvent → delivery to a subscriber, end to end, vs the broker direct.

pylotto: publishers call PublishEvent (in-memory broker) and one SubscribeTopicEvents stream
receives and acknowledges every event. Baseline: the same publishers PUBLISH straight to Redis
and one redis-py subscriber receives. Latency is publish start → delivery in this process.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis

from bench.stats import Round
from pylotto.proto.layotto import appcallback_pb2, runtime_pb2, runtime_pb2_grpc

PAD = b"x" * 1016  # with the 8-byte timestamp: 1 KB events
STAMP = struct.Struct("<d")


class Window:
    """Collects delivery latencies of events published inside the measured window."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.began = time.perf_counter()
        self.measure_from = self.began + warmup
        self.measure_to = self.measure_from + seconds
        self.latencies: list[float] = []
        self.published = 0

    def delivered(self, data: bytes) -> None:
        sent = STAMP.unpack_from(data)[0]
        if self.measure_from <= sent < self.measure_to:
            self.latencies.append(time.perf_counter() - sent)

    def payload(self) -> bytes | None:
        now = time.perf_counter()
        if now >= self.measure_to:
            return None
        if now >= self.measure_from:
            self.published += 1
        return STAMP.pack(now) + PAD


async def run_round(window: Window, publish: Callable[[bytes], Any], publishers: int,
               seconds: float, cpu: Callable[[], float] | None) -> Round:
    async def publisher() -> None:
        while (data := window.payload()) is not None:
            await publish(data)

    async def cpu_marks() -> tuple[float, float]:
        await asyncio.sleep(window.measure_from - time.perf_counter())
        first = cpu() if cpu else 0.0
        await asyncio.sleep(window.measure_to - time.perf_counter())
        return first, cpu() if cpu else 0.0

    marking = asyncio.create_task(cpu_marks())
    await asyncio.gather(*(publisher() for _ in range(publishers)))
    marks = await marking
    await asyncio.sleep(0.5)  # let the last events arrive
    return Round(requests=len(window.latencies), seconds=seconds,
                 latencies_s=list(window.latencies),
                 cpu_seconds=(marks[1] - marks[0]) if cpu else None,
                 errors=window.published - len(window.latencies),
                 first_error="published but not delivered in 0.5 s"
                 if window.published > len(window.latencies) else "")


async def through_sidecar(stub: runtime_pb2_grpc.RuntimeStub, pubsub: str, topic: str,
                          publishers: int, seconds: float, warmup: float,
                          cpu: Callable[[], float] | None) -> Round:
    """One round through the sidecar: PublishEvent in, SubscribeTopicEvents out."""
    acks: asyncio.Queue[runtime_pb2.SubscribeTopicEventsRequest | None] = asyncio.Queue()
    acks.put_nowait(runtime_pb2.SubscribeTopicEventsRequest(
        initial_request=runtime_pb2.SubscribeTopicEventsRequestInitial(
            pubsub_name=pubsub, topic=topic)))

    async def outgoing() -> AsyncIterator[runtime_pb2.SubscribeTopicEventsRequest]:
        while (item := await acks.get()) is not None:
            yield item

    call = stub.SubscribeTopicEvents(outgoing())
    window: Window | None = None
    ready = asyncio.Event()

    async def receive() -> None:
        async for response in call:
            if response.HasField("initial_response"):
                ready.set()
                continue
            event = response.event_message
            if window is not None:
                window.delivered(event.data)
            acks.put_nowait(runtime_pb2.SubscribeTopicEventsRequest(
                event_processed=runtime_pb2.SubscribeTopicEventsRequestProcessed(
                    id=event.id, status=appcallback_pb2.TopicEventResponse(
                        status=appcallback_pb2.TopicEventResponse.SUCCESS))))

    receiver = asyncio.create_task(receive())
    await asyncio.wait_for(ready.wait(), 10)
    window = Window(warmup, seconds)

    def publish(data: bytes) -> Any:
        return stub.PublishEvent(runtime_pb2.PublishEventRequest(
            pubsub_name=pubsub, topic=topic, data=data))

    try:
        return await run_round(window, publish, publishers, seconds, cpu)
    finally:
        acks.put_nowait(None)
        receiver.cancel()
        call.cancel()
        await asyncio.gather(receiver, return_exceptions=True)


async def through_redis(channel: str, publishers: int, seconds: float, warmup: float) -> Round:
    """One round straight to Redis: PUBLISH in, a redis-py subscriber out."""
    client = aioredis.Redis(host="127.0.0.1", port=6379, max_connections=publishers + 2)
    sub = client.pubsub()
    await sub.subscribe(channel)
    window: Window | None = None

    async def receive() -> None:
        while True:
            message = await sub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and window is not None:
                window.delivered(message["data"])

    receiver = asyncio.create_task(receive())
    await asyncio.sleep(0.1)
    window = Window(warmup, seconds)
    try:
        return await run_round(window, lambda data: client.publish(channel, data), publishers,
                          seconds, None)
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
        await sub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
