"""A client that opens many streams on a sidecar and is then killed (run as a child process by
the soak test): ``python -m tests.soak.streams_client ADDRESS SUBSCRIPTIONS FILE_STREAMS FILE``.

It opens ``SUBSCRIPTIONS`` Dapr ``SubscribeTopicEventsAlpha1`` streams (each on a topic of its
own, on the in-memory pub/sub) and ``FILE_STREAMS`` Layotto ``GetFile`` streams of ``FILE``
(each reads its first chunk, then stops reading, so the sidecar is mid-transfer), prints
``ready`` once every stream is established and waits to be SIGKILLed: the sidecar sees every
stream dropped at once, without a goodbye."""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

import grpc
from dapr.proto.runtime.v1 import dapr_pb2_grpc, pubsub_pb2

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc

CHANNELS = 8
"""Streams are spread over this many HTTP/2 connections (the server's per-connection stream
limit is 100 by default in some clients)."""
BATCH = 100
"""Streams started at once (a burst of 2,000 call starts fails some of them inside gRPC core
with INTERNAL "Internal error from Core" before they reach the sidecar's handler)."""


async def subscribe(stub: Any, topic: str, calls: list[Any]) -> None:
    call = stub.SubscribeTopicEventsAlpha1()
    calls.append(call)  # a call no longer referenced is cancelled: keep each one open
    await call.write(pubsub_pb2.SubscribeTopicEventsRequestAlpha1(
        initial_request=pubsub_pb2.SubscribeTopicEventsRequestInitialAlpha1(
            pubsub_name="in-memory", topic=topic)))
    first = await call.read()
    assert first.HasField("initial_response"), first


async def read_file(stub: Any, name: str, calls: list[Any]) -> None:
    call = stub.GetFile(runtime_pb2.GetFileRequest(store_name="local", name=name))
    calls.append(call)
    first = await call.read()
    assert first.data, "GetFile sent an empty first chunk"


async def main(address: str, subscriptions: int, file_streams: int, name: str) -> None:
    channels = [grpc.aio.insecure_channel(address, options=[
        ("grpc.max_concurrent_streams", 10_000), ("grpc.use_local_subchannel_pool", 1),
        ("grpc.channel_id", i)]) for i in range(CHANNELS)]
    calls: list[Any] = []
    prefix = uuid.uuid4().hex[:8]
    work = []
    for i in range(subscriptions):
        stub = dapr_pb2_grpc.DaprStub(channels[i % CHANNELS])
        work.append(subscribe(stub, f"soak-{prefix}-{i}", calls))
    for i in range(file_streams):
        work.append(read_file(runtime_pb2_grpc.RuntimeStub(channels[i % CHANNELS]), name, calls))
    for start in range(0, len(work), BATCH):
        await asyncio.gather(*work[start:start + BATCH])
    print("ready", flush=True)
    await asyncio.sleep(3600)  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
