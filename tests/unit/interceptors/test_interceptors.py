"""The gRPC concerns (pylotto.facades.interceptors) served by a real grpc.aio server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from pylotto.core.errors import InvalidArgument, PylottoError, ResourceExhausted
from pylotto.facades.interceptors import (
    ApiToken,
    ErrorMapping,
    Interceptors,
    RateLimit,
    Telemetry,
    Wrapper,
)
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing

TOKEN = (("dapr-api-token", "secret"),)


class SpanNames(Tracing):
    def __init__(self) -> None:
        super().__init__(None, "test")
        self.enabled = True
        self.names: list[str] = []

    @contextlib.contextmanager
    def span(self, name: str, kind: str, parent: Any = None, **attributes: str) -> Iterator[None]:
        self.names.append(f"{kind} {name}")
        yield


async def unary(request: bytes, context: Any) -> bytes:
    if request == b"invalid":
        raise InvalidArgument("bad request")
    if request == b"abort":
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, "there")
    if request == b"crash":
        raise ValueError("boom")
    return b"ok:" + request


async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    if request == b"invalid":
        raise InvalidArgument("late")


HANDLERS = {"Echo": grpc.unary_unary_rpc_method_handler(unary),
            "Watch": grpc.unary_stream_rpc_method_handler(stream)}


class Counting(Wrapper):
    def __init__(self) -> None:
        self.wrapped: list[str] = []

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        self.wrapped.append(method)
        return handler


@contextlib.asynccontextmanager
async def served(interceptors: Interceptors) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[interceptors])
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler("t.Svc", HANDLERS),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": HANDLERS["Echo"]}),
        grpc.method_handlers_generic_handler("pylotto.v1.SidecarInvoke", HANDLERS)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def status(channel: grpc.aio.Channel, method: str, request: bytes,
                 metadata: Any = TOKEN) -> tuple[str, str]:
    try:
        if method.endswith("/Watch"):
            answer: Any = [item async for item in channel.unary_stream(method)(
                request, metadata=metadata)]
        else:
            answer = await channel.unary_unary(method)(request, metadata=metadata)
    except grpc.aio.AioRpcError as err:
        return err.code().name, err.details() or ""
    return "OK", repr(answer)


def requests(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {(s.labels["api"], s.labels["code"]): s.value
            for family in metrics.registry.collect() if family.name == "pylotto_api_requests"
            for s in family.samples if s.name.endswith("_total")}


def test_constructors_check_their_arguments() -> None:
    with pytest.raises(ValueError, match="API token"):
        ApiToken("")
    with pytest.raises(ValueError, match="prefixes"):
        ApiToken("secret", exempt=("grpc.health",))
    with pytest.raises(TypeError, match="callable"):
        RateLimit(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metrics or tracing"):
        Telemetry()
    with pytest.raises(TypeError, match="Metrics"):
        Telemetry(metrics=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Wrapper or Gate"):
        Interceptors(ErrorMapping(), object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_cached"):
        Interceptors(ErrorMapping(), max_cached=-1)


async def test_errors_map_to_their_status_and_telemetry_counts_them() -> None:
    metrics, tracing = Metrics(), SpanNames()
    async with served(Interceptors(Telemetry(metrics, tracing), ErrorMapping())) as channel:
        assert await status(channel, "/t.Svc/Echo", b"x") == ("OK", "b'ok:x'")
        assert await status(channel, "/t.Svc/Echo", b"invalid") == (
            "INVALID_ARGUMENT", "bad request")
        assert await status(channel, "/t.Svc/Echo", b"abort") == ("ALREADY_EXISTS", "there")
        assert (await status(channel, "/t.Svc/Echo", b"crash"))[0] == "UNKNOWN"
        assert await status(channel, "/t.Svc/Watch", b"invalid") == ("INVALID_ARGUMENT", "late")
        assert await status(channel, "/grpc.health.v1.Health/Check", b"x") == ("OK", "b'ok:x'")
    assert requests(metrics) == {("Echo", "OK"): 1, ("Echo", "INVALID_ARGUMENT"): 1,
                                 ("Echo", "ALREADY_EXISTS"): 1, ("Echo", "UNKNOWN"): 1,
                                 ("Watch", "INVALID_ARGUMENT"): 1}
    assert tracing.names == ["server t.Svc/Echo"] * 4 + ["server t.Svc/Watch"]


async def test_token_and_rate_limit_refusals_are_mapped_and_counted() -> None:
    admitted: list[str] = []

    def admit(api: str) -> None:
        admitted.append(api)
        if api == "Watch":
            raise ResourceExhausted("rate limit exceeded: Watch is limited to 1/s")

    metrics = Metrics()
    async with served(Interceptors(Telemetry(metrics), ErrorMapping(), ApiToken("secret"),
                                   RateLimit(admit))) as channel:
        assert await status(channel, "/t.Svc/Echo", b"x", ()) == (
            "UNAUTHENTICATED", "missing api token in request metadata (dapr-api-token)")
        assert await status(channel, "/t.Svc/Echo", b"x", (("dapr-api-token", "no"),)) == (
            "UNAUTHENTICATED", "api token mismatch")
        assert await status(channel, "/t.Svc/Echo", b"x") == ("OK", "b'ok:x'")
        assert await status(channel, "/t.Svc/Watch", b"x") == (
            "RESOURCE_EXHAUSTED", "rate limit exceeded: Watch is limited to 1/s")
        assert await status(channel, "/grpc.health.v1.Health/Check", b"x", ()) == (
            "OK", "b'ok:x'")
        assert await status(channel, "/pylotto.v1.SidecarInvoke/Watch", b"x") == (
            "OK", "[b'first']")
    assert admitted == ["Echo", "Watch"]  # not for refused tokens, health or other sidecars
    assert requests(metrics) == {("Echo", "UNAUTHENTICATED"): 2, ("Echo", "OK"): 1,
                                 ("Watch", "RESOURCE_EXHAUSTED"): 1, ("Watch", "OK"): 1}


async def test_handlers_are_wrapped_once_per_method_and_refusals_skip_inner_wrappers() -> None:
    outer, inner = Counting(), Counting()
    async with served(Interceptors(outer, ErrorMapping(), ApiToken("secret"), inner)) as channel:
        for _ in range(3):
            assert await status(channel, "/t.Svc/Echo", b"x") == ("OK", "b'ok:x'")
        assert (await status(channel, "/t.Svc/Echo", b"x", ()))[0] == "UNAUTHENTICATED"
    assert outer.wrapped == ["/t.Svc/Echo", "/t.Svc/Echo"]  # once, then the refused call
    assert inner.wrapped == ["/t.Svc/Echo"]


def test_refusals_raise_the_gates_error() -> None:
    class Details:
        method = "/t.Svc/Echo"
        invocation_metadata = ()

    refusal = ApiToken("secret").check(Details())
    assert isinstance(refusal, PylottoError)
    assert refusal.message.startswith("missing api token")
