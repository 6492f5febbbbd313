"""SayHello through the real sidecar."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from google.protobuf import any_pb2

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar


def test_say_hello_with_the_default_component(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    reply = stub.SayHello(runtime_pb2.SayHelloRequest(service_name="quick_start_demo",
                                                      name="layotto"), timeout=5)
    assert reply.hello == "greeting, layotto"
    assert not reply.HasField("data")
    reply = stub.SayHello(runtime_pb2.SayHelloRequest(service_name="quick_start_demo"), timeout=5)
    assert reply.hello == "greeting"


def test_data_is_echoed(sidecar: Sidecar) -> None:
    payload = any_pb2.Any(type_url="type.example/x", value=b"\x01" * 4096)
    reply = sidecar.stub().SayHello(runtime_pb2.SayHelloRequest(
        service_name="quick_start_demo", name="n", data=payload), timeout=5)
    assert reply.data == payload


@pytest.mark.parametrize("service", ["nope", ""])
def test_unknown_or_empty_service_is_layottos_plain_error(sidecar: Sidecar, service: str) -> None:
    """Layotto's ``ErrNoInstance`` (pkg/grpc/default_api/api.go), a plain error: Unknown."""
    with pytest.raises(grpc.RpcError) as info:
        sidecar.stub().SayHello(runtime_pb2.SayHelloRequest(service_name=service), timeout=5)
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNKNOWN,
                                                         "no instance found")


def test_configured_greeting_and_no_service(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_sidecar(components={"hello": {"hi": {"type": "hello.helloworld",
                                                      "metadata": {"hello": "hi"}}}})
    reply = car.stub().SayHello(runtime_pb2.SayHelloRequest(service_name="hi", name="you"))
    assert reply.hello == "hi, you"
    empty = start_sidecar(components={})
    with pytest.raises(grpc.RpcError) as info:
        empty.stub().SayHello(runtime_pb2.SayHelloRequest(service_name="hi"), timeout=5)
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNKNOWN,
                                                         "no instance found")
