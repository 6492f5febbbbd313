"""Calling any method of a gRPC service with a message or with raw bytes, and naming the
answer: a status code name, or ``OPEN`` for a stream still running when we stopped waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

ANSWER_WAIT_SECONDS = 2.0
"""How long a unary call may take (deadline)."""
STREAM_WAIT_SECONDS = 0.05
"""How long a stream is watched before it counts as accepted and is cancelled."""

OPEN = "OPEN"


@dataclass(frozen=True)
class Method:
    path: str
    """``/package.Service/Method``."""
    descriptor: MethodDescriptor

    @property
    def client_streaming(self) -> bool:
        return bool(self.descriptor.client_streaming)

    @property
    def server_streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)


def methods_of(service: ServiceDescriptor, *, leave_out: tuple[str, ...] = ()) -> list[Method]:
    return [Method(f"/{service.full_name}/{m.name}", m) for m in service.methods
            if m.name not in leave_out]


@dataclass(frozen=True)
class Answer:
    code: str
    details: str


def call(channel: grpc.Channel, method: Method, payload: bytes) -> Answer:
    """Send ``payload`` (a serialized request, or any bytes) to ``method``; the answer."""
    if method.client_streaming:
        return _client_stream(channel, method, payload)
    if method.server_streaming:
        stream = channel.unary_stream(method.path)(payload, timeout=ANSWER_WAIT_SECONDS)
        return _watch(stream)
    try:
        channel.unary_unary(method.path)(payload, timeout=ANSWER_WAIT_SECONDS)
    except grpc.RpcError as err:
        return Answer(err.code().name, err.details() or "")
    return Answer("OK", "")


def _client_stream(channel: grpc.Channel, method: Method, payload: bytes) -> Answer:
    """Send one message and keep the request stream open (a half-close is an answer of its
    own in Layotto's SubscribeConfiguration) until the call ends or is cancelled."""
    done = threading.Event()

    def requests() -> Iterator[bytes]:
        yield payload
        done.wait(ANSWER_WAIT_SECONDS)

    try:
        if method.server_streaming:
            stream = channel.stream_stream(method.path)(requests(), timeout=ANSWER_WAIT_SECONDS)
            return _watch(stream)
        future = channel.stream_unary(method.path).future(requests(),
                                                          timeout=ANSWER_WAIT_SECONDS)
        try:
            future.result(timeout=STREAM_WAIT_SECONDS * 4)
        except grpc.FutureTimeoutError:
            future.cancel()
            return Answer(OPEN, "")
        except grpc.RpcError as err:
            return Answer(err.code().name, err.details() or "")
        return Answer("OK", "")
    finally:
        done.set()


def _watch(stream: grpc.Call) -> Answer:
    """The stream's end status if it ends (or its first message arrives) within
    :data:`STREAM_WAIT_SECONDS`; OPEN otherwise (cancelled)."""
    ended = threading.Event()
    stream.add_done_callback(lambda _: ended.set())
    if not ended.wait(STREAM_WAIT_SECONDS):
        stream.cancel()
        return Answer(OPEN, "")
    code = stream.code()
    return Answer(code.name, stream.details() or "")
