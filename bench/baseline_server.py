"""Minimal grpc.aio + uvloop server of the Layotto Runtime service: each handler does exactly
one redis-py call (GET, SET, MGET, or a MULTI/EXEC pipeline). The floor for any Python sidecar."""

from __future__ import annotations

import argparse

import grpc
import redis.asyncio as aioredis
from google.protobuf import empty_pb2

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc


class MinimalRuntime(runtime_pb2_grpc.RuntimeServicer):
    """GetState/SaveState/GetBulkState/ExecuteStateTransaction straight onto Redis strings."""

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


async def serve(port: int) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=6379, max_connections=64)
    server = grpc.aio.server()
    runtime_pb2_grpc.add_RuntimeServicer_to_server(
        MinimalRuntime(client), server)  # type: ignore[abstract]  # only these four RPCs
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
