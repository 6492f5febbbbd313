"""The servers that ``bench.grpc_stacks`` compares: one Layotto ``GetState`` (one Redis GET of a
1 KB value) on each gRPC server stack that installs here, plus an aiohttp HTTP GET of the same
value. ``python -m bench.stack_servers --stack NAME --port N`` serves one of them.

Every handler does the same work: parse the request, one redis-py GET, build the response. Only
the server stack around it differs. The ``asgi-*`` stacks are a measurement only: a few lines of
gRPC unary framing (5-byte prefix + protobuf, ``grpc-status`` in the trailers) over the HTTP/2 of
an ASGI server; they lack every other gRPC feature.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from pylotto.proto.layotto import runtime_pb2

GET_STATE = "/spec.proto.runtime.v1.Runtime/GetState"
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379

Handler = Callable[[bytes], Awaitable[bytes]]


def redis_get_handler() -> Handler:
    """Serialized GetStateRequest -> serialized GetStateResponse, one redis-py asyncio GET."""
    import redis.asyncio as aioredis

    client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, max_connections=64)

    async def handle(body: bytes) -> bytes:
        request = runtime_pb2.GetStateRequest.FromString(body)
        value = await client.get(request.key)
        return runtime_pb2.GetStateResponse(
            data=value if isinstance(value, bytes) else b"").SerializeToString()

    return handle


# grpc.aio ---------------------------------------------------------------------------------------

TUNED_OPTIONS: list[tuple[str, int | str]] = [
    ("grpc.optimization_target", "throughput"),
    ("grpc.max_concurrent_streams", 1000),
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.write_buffer_size", 1 << 16),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.so_reuseport", 1),
    ("grpc.enable_retries", 0),
]


def pylotto_options() -> list[tuple[str, int | str]]:
    """The options ``pylotto run`` gives its grpc.aio server (one place: process/server.py)."""
    from pylotto.process.server import grpc_options

    return list(grpc_options(reuse_port=False))


async def serve_aio(port: int, options: list[tuple[str, int | str]] | None,
                    pylotto_extras: bool, interceptor: bool | None = None) -> None:
    """grpc.aio with a raw-bytes unary handler (no stub codegen cost difference to a stub);
    ``pylotto_extras`` also registers health and reflection and (unless ``interceptor`` is
    False) one pass-through interceptor, as pylotto's server does."""
    if interceptor is None:
        interceptor = pylotto_extras
    handle = redis_get_handler()

    async def get_state(body: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return await handle(body)

    method = grpc.unary_unary_rpc_method_handler(get_state)  # bytes in, bytes out
    generic = grpc.method_handlers_generic_handler(
        "spec.proto.runtime.v1.Runtime", {"GetState": method})
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if interceptor:
        interceptors.append(PassThrough())
    server = grpc.aio.server(options=options, interceptors=interceptors)
    server.add_generic_rpc_handlers((generic,))
    if pylotto_extras:
        from grpc_health.v1 import health, health_pb2_grpc
        from grpc_reflection.v1alpha import reflection

        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        reflection.enable_server_reflection(
            ["spec.proto.runtime.v1.Runtime", reflection.SERVICE_NAME], server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


class PassThrough(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The cost of having an interceptor at all (pylotto has one that dispatches to its hooks)."""

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[grpc.RpcMethodHandler]],
            handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return await continuation(handler_call_details)


# sync grpc.server -------------------------------------------------------------------------------

def serve_sync(port: int, threads: int) -> None:
    """grpc.server + ThreadPoolExecutor, sync redis-py (a pool shared by the threads)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, max_connections=64)

    def get_state(body: bytes, context: grpc.ServicerContext) -> bytes:
        request = runtime_pb2.GetStateRequest.FromString(body)
        value = client.get(request.key)
        return runtime_pb2.GetStateResponse(
            data=value if isinstance(value, bytes) else b"").SerializeToString()

    generic = grpc.method_handlers_generic_handler(
        "spec.proto.runtime.v1.Runtime", {"GetState": grpc.unary_unary_rpc_method_handler(
            get_state)})
    server = grpc.server(ThreadPoolExecutor(max_workers=threads),
                         options=pylotto_options())
    server.add_generic_rpc_handlers((generic,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


# grpclib ----------------------------------------------------------------------------------------

async def serve_grpclib(port: int) -> None:
    """grpclib (pure-Python HTTP/2 on h2) with a hand-written ``__mapping__`` (no codegen)."""
    import redis.asyncio as aioredis
    from grpclib.const import Cardinality
    from grpclib.const import Handler as GrpclibHandler
    from grpclib.server import Server, Stream

    client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, max_connections=64)

    class Runtime:
        async def get_state(self, stream: Stream[Any, Any]) -> None:
            request = await stream.recv_message()
            assert request is not None  # a unary call always carries its one message
            value = await client.get(request.key)
            await stream.send_message(runtime_pb2.GetStateResponse(
                data=value if isinstance(value, bytes) else b""))

        def __mapping__(self) -> dict[str, GrpclibHandler]:
            return {GET_STATE: GrpclibHandler(
                self.get_state, Cardinality.UNARY_UNARY,
                runtime_pb2.GetStateRequest, runtime_pb2.GetStateResponse)}

    server = Server([Runtime()])
    await server.start("127.0.0.1", port)
    await server.wait_closed()


# ASGI over an HTTP/2 server ---------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def grpc_unary_asgi(handle: Handler) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The least gRPC unary over ASGI: un-frame the request, frame the answer, status 0 in the
    trailers. Only POST ``GET_STATE``; anything else is grpc-status 12 (UNIMPLEMENTED)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, answer = b"12", b""
        if scope["path"] == GET_STATE and len(body) >= 5:
            (length,) = struct.unpack(">I", body[1:5])
            reply = await handle(body[5:5 + length])
            status, answer = b"0", b"\x00" + struct.pack(">I", len(reply)) + reply
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"application/grpc")]})
        await send({"type": "http.response.body", "body": answer})
        await send({"type": "http.response.trailers", "more_trailers": False,
                    "headers": [(b"grpc-status", status)]})

    return app


async def serve_hypercorn(port: int) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    config.accesslog = None
    await serve(grpc_unary_asgi(redis_get_handler()), config)  # type: ignore[arg-type]


_GRANIAN_APP: list[Callable[[Scope, Receive, Send], Awaitable[None]]] = []


async def granian_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Granian imports its app by name; the handler is built on first call (in its loop)."""
    if not _GRANIAN_APP:
        _GRANIAN_APP.append(grpc_unary_asgi(redis_get_handler()))
    await _GRANIAN_APP[0](scope, receive, send)


def serve_granian(port: int) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops

    Granian("bench.stack_servers:granian_app", address="127.0.0.1", port=port,
            interface=Interfaces.ASGI, http=HTTPModes.http2, loop=Loops.uvloop,
            workers=1, log_enabled=False).serve()


# aiohttp HTTP GET -------------------------------------------------------------------------------

async def serve_aiohttp(port: int) -> None:
    """``GET /state/{key}``: one redis-py GET, the value as the body (the HTTP/1.1 direct path)."""
    import redis.asyncio as aioredis
    from aiohttp import web

    client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, max_connections=64)

    async def get(request: web.Request) -> web.Response:
        value = await client.get(request.match_info["key"])
        return web.Response(body=value if isinstance(value, bytes) else b"")

    app = web.Application()
    app.router.add_get("/state/{key}", get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# dispatch ---------------------------------------------------------------------------------------

def _uvloop(coro: Awaitable[None]) -> None:
    import uvloop

    uvloop.run(coro)  # type: ignore[arg-type]


STACKS: dict[str, Callable[[int], None]] = {
    "aio-min": lambda port: _uvloop(serve_aio(port, None, pylotto_extras=False)),
    "aio-pylotto": lambda port: _uvloop(serve_aio(port, pylotto_options(), pylotto_extras=True)),
    "aio-options": lambda port: _uvloop(serve_aio(port, pylotto_options(), pylotto_extras=False)),
    "aio-interceptor": lambda port: _uvloop(serve_aio(port, None, pylotto_extras=False,
                                                      interceptor=True)),
    "aio-pylotto-noic": lambda port: _uvloop(serve_aio(port, pylotto_options(),
                                                       pylotto_extras=True, interceptor=False)),
    "aio-tuned": lambda port: _uvloop(serve_aio(port, TUNED_OPTIONS, pylotto_extras=False)),
    "aio-asyncio": lambda port: asyncio.run(serve_aio(port, None, pylotto_extras=False)),
    "sync-threads4": lambda port: serve_sync(port, 4),
    "sync-threads16": lambda port: serve_sync(port, 16),
    "grpclib": lambda port: _uvloop(serve_grpclib(port)),
    "asgi-hypercorn": lambda port: _uvloop(serve_hypercorn(port)),
    "asgi-granian": serve_granian,
    "http-aiohttp": lambda port: _uvloop(serve_aiohttp(port)),
}
"""Stack name -> serve on 127.0.0.1:port until killed."""

ENVIRONMENTS: dict[str, dict[str, str]] = {
    "aio-tuned": {"GRPC_EXPERIMENTS": "event_engine_listener,event_engine_client"},
}
"""Extra environment variables a stack's process is started with."""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stack_servers", description=__doc__)
    parser.add_argument("--stack", choices=sorted(STACKS), required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    STACKS[args.stack](args.port)


if __name__ == "__main__":
    main()
