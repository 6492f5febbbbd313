"""The least a Python sidecar can do for pub/sub on Redis Streams (the floor of scenario 3b).

A grpc.aio + uvloop server of the Layotto Runtime service with two handlers: ``PublishEvent``
does one ``XADD``; ``SubscribeTopicEvents`` makes a consumer group, then reads new entries
(``XREADGROUP COUNT``, at most 16 unacknowledged, as pylotto's default
``maxConcurrentHandlers``), writes each to the stream and sends ``XACK`` for each
``event_processed`` the client answers. redis-py, as the GetState baseline. No CloudEvent, no
metadata, no retries, no policy: the gRPC and Redis work every message costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import redis.asyncio as aioredis
import redis.exceptions
from google.protobuf import empty_pb2

from pylotto.proto.layotto import appcallback_pb2, runtime_pb2, runtime_pb2_grpc

IN_FLIGHT = 16
GROUP = "floor"


class FloorRuntime(runtime_pb2_grpc.RuntimeServicer):
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def PublishEvent(self, request: runtime_pb2.PublishEventRequest,
                           context: grpc.aio.ServicerContext[Any, Any]) -> empty_pb2.Empty:
        await self.redis.xadd(request.topic, {"data": request.data})
        return empty_pb2.Empty()

    async def SubscribeTopicEvents(
            self, requests: AsyncIterator[runtime_pb2.SubscribeTopicEventsRequest],
            context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[runtime_pb2.SubscribeTopicEventsResponse]:
        first = await anext(aiter(requests))
        topic = first.initial_request.topic
        with contextlib.suppress(redis.exceptions.ResponseError):  # BUSYGROUP
            await self.redis.xgroup_create(topic, GROUP, id="$", mkstream=True)
        slots = asyncio.Semaphore(IN_FLIGHT)
        out: asyncio.Queue[runtime_pb2.SubscribeTopicEventsResponse] = asyncio.Queue()

        async def read() -> None:
            while True:
                await slots.acquire()
                taken = 1
                while taken < IN_FLIGHT and not slots.locked():
                    await slots.acquire()
                    taken += 1
                reply: Any = await self.redis.xreadgroup(GROUP, "c", {topic: ">"},
                                                         count=taken, block=1000)
                entries = [entry for _, batch in reply or [] for entry in batch]
                for _ in range(taken - len(entries)):
                    slots.release()
                for entry_id, fields in entries:
                    out.put_nowait(runtime_pb2.SubscribeTopicEventsResponse(
                        event_message=appcallback_pb2.TopicEventRequest(
                            id=entry_id.decode(), topic=topic, data=fields[b"data"])))

        async def acks() -> None:
            async for request in requests:
                await self.redis.xack(topic, GROUP, request.event_processed.id)
                slots.release()

        tasks = [asyncio.create_task(read()), asyncio.create_task(acks())]
        try:
            yield runtime_pb2.SubscribeTopicEventsResponse(
                initial_response=runtime_pb2.SubscribeTopicEventsResponseInitial())
            while True:
                yield await out.get()
        finally:
            for task in tasks:
                task.cancel()


async def serve(port: int) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=6379, max_connections=64)
    server = grpc.aio.server()
    runtime_pb2_grpc.add_RuntimeServicer_to_server(
        FloorRuntime(client), server)  # type: ignore[abstract]  # only these two RPCs
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    import uvloop

    uvloop.run(serve(port))


if __name__ == "__main__":
    main()

