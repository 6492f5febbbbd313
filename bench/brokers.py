"""Scenario 3b: PublishEvent → delivery on each real broker, against that broker's own client.

pylotto: a sidecar whose ``bus`` is the broker (``redis``: Redis Streams, ``rabbitmq``,
``jetstream``, ``mqtt3``), four publishers calling PublishEvent and one SubscribeTopicEvents
stream acknowledging every event (:func:`bench.pubsub.through_sidecar`). Baseline: the same four
publishers and one consumer in the benchmark process, on the client library pylotto's
component uses, with the same guarantees: publishes the broker confirms (Redis ``XADD``, AMQP
publisher confirms of persistent messages to a durable exchange and quorum queue, JetStream's
PubAck, MQTT QoS 1 PUBACK) and a consumer that acknowledges each message after reading it
(``XACK`` of each read batch, AMQP ``ack``, JetStream ``ack``, MQTT QoS 1). What the ratio
measures is what the sidecar adds over using the broker directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from bench.harness import Progress, Runner, Settings, channels, interleave
from bench.procs import ServerProcess, Sidecar, cpu_seconds
from bench.pubsub import Window, run_round, through_sidecar
from bench.stats import Comparison, Round

REDIS = "127.0.0.1:6379"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
NATS = "nats://127.0.0.1:4222"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883

COMPONENTS: dict[str, dict[str, Any]] = {
    "redis": {"type": "redis", "metadata": {"redisHost": REDIS, "consumerID": "bench"}},
    "rabbitmq": {"type": "rabbitmq", "metadata": {"connectionString": AMQP,
                                                  "consumerID": "bench"}},
    "jetstream": {"type": "jetstream", "metadata": {"natsURL": NATS, "streamName": "benchps",
                                                    "consumerID": "bench"}},
    "mqtt3": {"type": "mqtt3", "metadata": {"url": f"tcp://{MQTT_HOST}:{MQTT_PORT}",
                                            "consumerID": "bench"}},
}
"""The sidecar's ``bus`` for each broker."""

async def _round(publish: Callable[[bytes], Awaitable[Any]],
                 consume: Callable[[Callable[[bytes], None]], Coroutine[Any, Any, None]],
                 publishers: int, seconds: float, warmup: float) -> Round:
    """One round: ``consume(delivered)`` runs as a task while the publishers publish."""
    window: Window | None = None

    def delivered(data: bytes) -> None:
        if window is not None:
            window.delivered(data)

    consumer = asyncio.create_task(consume(delivered))
    await asyncio.sleep(0.3)  # subscribed before the first publish
    window = Window(warmup, seconds)
    try:
        return await run_round(window, publish, publishers, seconds, None)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)


async def through_redis_streams(publishers: int, seconds: float, warmup: float) -> Round:
    import redis.asyncio as aioredis

    stream = f"bench-direct-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis(host="127.0.0.1", port=6379, max_connections=publishers + 4)
    await client.xgroup_create(stream, "bench", id="0", mkstream=True)

    async def consume(delivered: Callable[[bytes], None]) -> None:
        while True:
            reply: Any = await client.xreadgroup("bench", "c1", {stream: ">"}, count=100,
                                                 block=1000)
            for _, entries in reply or []:
                for _, fields in entries:
                    delivered(fields[b"data"])
                await client.xack(stream, "bench", *(entry_id for entry_id, _ in entries))

    try:
        return await _round(lambda data: client.xadd(stream, {"data": data}), consume,
                            publishers, seconds, warmup)
    finally:
        await client.delete(stream)
        await client.aclose()


async def through_rabbitmq(publishers: int, seconds: float, warmup: float) -> Round:
    import aio_pika

    topic = f"bench-direct-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(AMQP)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(topic, aio_pika.ExchangeType.FANOUT, durable=True)
    consuming = await connection.channel()
    await consuming.set_qos(prefetch_count=100)
    queue = await consuming.declare_queue(f"bench-{topic}", durable=True,
                                          arguments={"x-queue-type": "quorum"})
    await queue.bind(topic)

    async def consume(delivered: Callable[[bytes], None]) -> None:
        async with queue.iterator() as messages:
            async for message in messages:
                delivered(message.body)
                await message.ack()

    async def publish(data: bytes) -> None:
        await exchange.publish(aio_pika.Message(
            data, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key="")

    try:
        return await _round(publish, consume, publishers, seconds, warmup)
    finally:
        with contextlib.suppress(Exception):
            await queue.delete(if_unused=False, if_empty=False)
            await exchange.delete()
        await connection.close()


async def through_jetstream(publishers: int, seconds: float, warmup: float) -> Round:
    import nats

    stream = f"benchdirect{uuid.uuid4().hex[:8]}"
    subject = f"{stream}.events"
    client = await nats.connect(NATS)
    js = client.jetstream()
    await js.add_stream(name=stream, subjects=[f"{stream}.>"])
    pull = await js.pull_subscribe(subject, durable="bench")

    async def consume(delivered: Callable[[bytes], None]) -> None:
        while True:
            try:
                messages = await pull.fetch(100, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                delivered(message.data)
                await message.ack()

    try:
        return await _round(lambda data: js.publish(subject, data), consume, publishers,
                            seconds, warmup)
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await client.close()


async def through_mqtt(publishers: int, seconds: float, warmup: float) -> Round:
    import aiomqtt

    topic = f"bench-direct/{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(MQTT_HOST, MQTT_PORT) as publisher, \
            aiomqtt.Client(MQTT_HOST, MQTT_PORT) as subscriber:
        await subscriber.subscribe(topic, qos=1)

        async def consume(delivered: Callable[[bytes], None]) -> None:
            async for message in subscriber.messages:
                payload = message.payload
                delivered(payload if isinstance(payload, bytes) else bytes(str(payload), "utf-8"))

        return await _round(lambda data: publisher.publish(topic, data, qos=1), consume,
                            publishers, seconds, warmup)


DIRECT: dict[str, tuple[str, Callable[[int, float, float], Awaitable[Round]]]] = {
    "redis": ("redis-py XADD / XREADGROUP + XACK", through_redis_streams),
    "rabbitmq": ("aio-pika, confirms, quorum queue", through_rabbitmq),
    "jetstream": ("nats-py JetStream publish / pull + ack", through_jetstream),
    "mqtt3": ("aiomqtt QoS 1", through_mqtt),
}
"""For each broker: the baseline's name and its round."""


async def reachable() -> AsyncIterator[str]:
    """The brokers of :data:`COMPONENTS` that accept a TCP connection here."""
    for broker, (host, port) in {"redis": ("127.0.0.1", 6379), "rabbitmq": ("127.0.0.1", 5672),
                                 "jetstream": ("127.0.0.1", 4222),
                                 "mqtt3": (MQTT_HOST, MQTT_PORT)}.items():
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        except (OSError, TimeoutError):
            continue
        writer.close()
        yield broker


FLOOR = "grpc.aio floor server (XADD / XREADGROUP / XACK)"
"""Scenario 3b's third path on Redis: :mod:`bench.baseline_server`, its pub/sub handlers."""


async def scenario_brokers(workdir: Path, settings: Settings, progress: Progress,
                           sidecar_args: list[str]) -> tuple[list[Comparison], dict[str, Any]]:
    """Scenario 3b: scenario 3 on each broker that runs here, against its own client."""
    present = [broker async for broker in reachable()]
    car = Sidecar(workdir / "brokers", {"pubsub": {
        broker: COMPONENTS[broker] for broker in present}},
        extra_args=sidecar_args).start()
    stub = channels(car.address, 1)[0]
    floor = ServerProcess().start()  # bench.baseline_server
    floor_stub = channels(floor.address, 1)[0]
    s = settings
    rows: list[Comparison] = []
    extra: dict[str, Any] = {}

    async def floor_round(cpu: Callable[[], float] | None) -> Round:
        return await through_sidecar(floor_stub, "", f"bench-floor-{os.getpid()}", 4,
                                     s.seconds, s.warmup, cpu)

    try:
        for broker in present:
            name, direct = DIRECT[broker]
            topic = f"bench-{broker}-{os.getpid()}"

            async def sidecar(cpu: Callable[[], float] | None, bus: str = broker,
                              topic: str = topic) -> Round:
                return await through_sidecar(stub, bus, topic, 4, s.seconds, s.warmup, cpu)

            async def own(cpu: Callable[[], float] | None,
                          direct: Callable[[int, float, float], Awaitable[Round]] = direct
                          ) -> Round:
                return await direct(4, s.seconds, s.warmup)

            paths: dict[str, tuple[Runner, Callable[[], float] | None]] = {
                "pylotto": (sidecar, lambda: cpu_seconds(car.pid)), name: (own, None)}
            if broker == "redis":
                paths[FLOOR] = (floor_round, lambda: cpu_seconds(floor.pid))
            med = await interleave(f"3b PublishEvent -> delivery, {broker}", paths, s,
                                   progress)
            for baseline in paths.keys() - {"pylotto"}:
                rows.append(Comparison(f"3b PublishEvent → subscriber, {broker}",
                                       "4 publishers, max, 1 KB", med["pylotto"], baseline,
                                       med[baseline]))
            extra[f"pubsub {broker}"] = med
    finally:
        car.stop()
        floor.stop()
    return rows, extra
