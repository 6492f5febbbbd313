"""The least two Python sidecars can do for one invocation (the floor of scenario 4).

``--role caller``: a grpc.aio + uvloop server of the Layotto Runtime service whose
``InvokeService`` sends the request's bytes on, as one raw unary call over one shared
grpc.aio channel, to the callee relay (``--next``). ``--role callee``: a grpc.aio server of
that raw method, which POSTs the bytes to the app (``--app``, one pooled aiohttp session) and
answers its body. No name resolution, no policy: the gRPC server, gRPC client and HTTP client
work that every hop of a sidecar pays. ``--headers``: the caller also sends the app's response
headers as gRPC initial metadata before the answer, as Layotto's InvokeService does (grpc.aio
sends them in a batch of their own, unlike Go's ``grpc.SetHeader``).
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import grpc
from google.protobuf import any_pb2

from bench.baseline_server import listen
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc

RELAY_METHOD = "/bench.Relay/Call"


APP_HEADERS = (("content-length", "1024"), ("date", "Mon, 07 Dec 2026 12:00:00 GMT"),
               ("server", "Python/3.11 aiohttp"))
"""What the echo app answers besides its content type, for ``--headers``."""


class CallerRuntime(runtime_pb2_grpc.RuntimeServicer):
    def __init__(self, next_hop: grpc.aio.Channel, headers: bool) -> None:
        self.call = next_hop.unary_unary(RELAY_METHOD)
        self.headers = headers

    async def InvokeService(self, request: runtime_pb2.InvokeServiceRequest,
                            context: grpc.aio.ServicerContext[object, object]
                            ) -> runtime_pb2.InvokeResponse:
        answer: bytes = await self.call(request.message.data.value, timeout=10)
        if self.headers:  # as Layotto: the app's headers as the caller's initial metadata
            await context.send_initial_metadata(APP_HEADERS)
        return runtime_pb2.InvokeResponse(data=any_pb2.Any(value=answer),
                                          content_type="application/octet-stream")


def callee_handler(session: aiohttp.ClientSession, app: str) -> grpc.GenericRpcHandler:
    async def relay(body: bytes, context: Any) -> bytes:
        async with session.post(app, data=body,
                                headers={"Content-Type": "application/octet-stream"}) as resp:
            return await resp.read()

    return grpc.method_handlers_generic_handler("bench.Relay", {
        "Call": grpc.unary_unary_rpc_method_handler(relay)})


async def serve(role: str, port: int, next_hop: str, app: str, headers: bool) -> None:
    server = grpc.aio.server()
    if role == "caller":
        channel = grpc.aio.insecure_channel(next_hop)
        runtime_pb2_grpc.add_RuntimeServicer_to_server(
            CallerRuntime(channel, headers), server)  # type: ignore[abstract]  # InvokeService only
    else:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        server.add_generic_rpc_handlers((callee_handler(session, app),))
    await listen(server, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--role", choices=("caller", "callee"), required=True)
    parser.add_argument("--next", default="", help="caller: the callee relay's address")
    parser.add_argument("--app", default="", help="callee: the app's URL")
    parser.add_argument("--headers", action="store_true",
                        help="caller: send the app's response headers as initial metadata")
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.role, args.port, args.next, args.app, args.headers))


if __name__ == "__main__":
    main()
