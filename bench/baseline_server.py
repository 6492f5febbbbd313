"""Minimal grpc.aio + uvloop server of the Layotto Runtime service: the floor for any Python
sidecar.

The state handlers do exactly one redis-py call each (GET, SET, MGET, or a MULTI/EXEC
pipeline). For pub/sub on Redis Streams (scenario 3b), ``PublishEvent`` does one ``XADD``;
``SubscribeTopicEvents`` makes a consumer group, then reads new entries (``XREADGROUP COUNT``, at
most 16 unacknowledged, as pylotto's default ``maxConcurrentHandlers``), writes each to the stream
and sends ``XACK`` for each ``event_processed`` the client answers. No CloudEvent, no metadata, no
retries, no policy: the gRPC and Redis work every call or message costs.
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


class MinimalRuntime(runtime_pb2_grpc.RuntimeServicer):
    """GetState/SaveState/GetBulkState/ExecuteStateTransaction straight onto Redis strings;
    PublishEvent/SubscribeTopicEvents on Redis Streams."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client

    async def GetState(self, request: runtime_pb2.GetStateRequest,
                       context: grpc.aio.ServicerContext[object, object]
                       ) -> runtime_pb2.GetStateResponse:
        value = await self.redis.get(request.key)
        return runtime_pb2.GetStateResponse(data=value if isinstance(value, bytes) else b"")

    async def SaveState(self, request: runtime_pb2.SaveStateRequest,
                        context: grpc.aio.ServicerContext[object, object]) -> empty_pb2.Empty:
        item = request.states[0]
        await self.redis.set(item.key, item.value)
        return empty_pb2.Empty()

    async def GetBulkState(self, request: runtime_pb2.GetBulkStateRequest,
                           context: grpc.aio.ServicerContext[object, object]
                           ) -> runtime_pb2.GetBulkStateResponse:
        values = await self.redis.mget(list(request.keys))
        return runtime_pb2.GetBulkStateResponse(items=[
            runtime_pb2.BulkStateItem(key=k, data=v if isinstance(v, bytes) else b"")
            for k, v in zip(request.keys, values, strict=True)])

    async def ExecuteStateTransaction(
            self, request: runtime_pb2.ExecuteStateTransactionRequest,
            context: grpc.aio.ServicerContext[object, object]) -> empty_pb2.Empty:
        async with self.redis.pipeline(transaction=True) as pipe:
            for op in request.operations:
                if op.operationType == "delete":
                    pipe.delete(op.request.key)
                else:
                    pipe.set(op.request.key, op.request.value)
            await pipe.execute()
        return empty_pb2.Empty()

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


async def listen(server: grpc.aio.Server, port: int) -> None:
    """Serve ``server`` on 127.0.0.1:``port`` until the process is stopped."""
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def serve(port: int) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=6379, max_connections=64)
    server = grpc.aio.server()
    runtime_pb2_grpc.add_RuntimeServicer_to_server(
        MinimalRuntime(client), server)  # type: ignore[abstract]  # only these six RPCs
    await listen(server, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    import uvloop

    uvloop.run(serve(port))


if __name__ == "__main__":
    main()
