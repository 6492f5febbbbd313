"""ClientMistakes (and the chain's coroutine-stream adapter) served by a real grpc.aio server:
undecodable requests, unimplemented methods and bugs answered with their status, logged once per
kind and interval, never with grpc.aio's UNKNOWN and a traceback per call."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from pylotto.facades.interceptors import ClientMistakes, ErrorMapping, Interceptors

Request = health_pb2.HealthCheckRequest
Response = health_pb2.HealthCheckResponse
UNDECODABLE = b"\xff\xff\xff"


async def echo(request: Any, context: Any) -> Any:
    if request.service == "crash":
        raise KeyError("a bug")
    return Response(status=Response.SERVING)


async def unimplemented(request: Any, context: Any) -> Any:
    # what a generated servicer base class does
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details("Method not implemented!")
    raise NotImplementedError("Method not implemented!")


async def count(requests: AsyncIterator[Any], context: Any) -> Any:
    n = 0
    async for _ in requests:
        n += 1
    return Response(status=n)


async def writes(request: Any, context: Any) -> None:
    # a streaming handler writing with context.write, as grpc_health's Watch
    await context.write(Response(status=Response.SERVING))
    await context.write(Response(status=Response.NOT_SERVING))


def _handlers() -> dict[str, grpc.RpcMethodHandler]:
    kwargs = {"request_deserializer": Request.FromString,
              "response_serializer": Response.SerializeToString}
    return {
        "Echo": grpc.unary_unary_rpc_method_handler(echo, **kwargs),
        "Missing": grpc.unary_unary_rpc_method_handler(unimplemented, **kwargs),
        "Count": grpc.stream_unary_rpc_method_handler(count, **kwargs),
        "Watch": grpc.unary_stream_rpc_method_handler(writes, **kwargs),
    }


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[Interceptors(ErrorMapping(), ClientMistakes())])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.Svc",
                                                                          _handlers())])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def code(call: Any, *args: Any) -> str:
    try:
        await call(*args)
    except grpc.aio.AioRpcError as err:
        return err.code().name
    return "OK"


async def test_client_mistakes_get_their_status_and_one_line_per_kind(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        async with served() as channel:
            echo_call = channel.unary_unary("/t.Svc/Echo")
            for _ in range(50):
                assert await code(echo_call, UNDECODABLE) == "INVALID_ARGUMENT"
                assert await code(channel.unary_unary("/t.Svc/Missing"),
                                  Request().SerializeToString()) == "UNIMPLEMENTED"
                assert await code(channel.stream_unary("/t.Svc/Count"),
                                  iter([Request().SerializeToString(), UNDECODABLE])
                                  ) == "INVALID_ARGUMENT"
                assert await code(echo_call, Request(service="crash").SerializeToString()
                                  ) == "INTERNAL"
            assert await code(echo_call, Request().SerializeToString()) == "OK"
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in lines] == [
        ("WARNING", "gRPC /t.Svc/Echo"),  # undecodable
        ("WARNING", "gRPC /t.Svc/Missing"),  # unimplemented
        ("ERROR", "gRPC /t.Svc/Echo failed"),  # the bug: its traceback, once
    ]
    assert [r.exc_info is not None for r in lines] == [False, False, True]
    assert not [r for r in lines if r.name.startswith("grpc")]  # no grpc.aio traceback


async def test_a_stream_written_with_context_write_is_served() -> None:
    async with served() as channel:
        answers = [Response.FromString(raw) async for raw in channel.unary_stream(
            "/t.Svc/Watch")(Request().SerializeToString())]
    assert [a.status for a in answers] == [Response.SERVING, Response.NOT_SERVING]
