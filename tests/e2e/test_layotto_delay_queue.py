"""Layotto's ``DelayQueue.PublishDelayMessage`` against the real sidecar: each message is
published onto the pub/sub at its time (a scheduler job in the embedded sqlite store), also
when the sidecar restarts in between, and reaches the subscribed Layotto app once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.proto.runtime.v1 import dapr_pb2_grpc, jobs_pb2

from pylotto.proto.layotto import (
    appcallback_pb2,
    appcallback_pb2_grpc,
    delay_queue_pb2,
    delay_queue_pb2_grpc,
)
from tests.e2e.sidecar import Sidecar

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

LATE = 5.0
"""How late a message may arrive after its time: the scheduler's poll (0.5 s), the start-up
of a restarted sidecar and a loaded CI machine, generously."""


class Subscriber(appcallback_pb2_grpc.AppCallbackServicer):
    """A Layotto app subscribed to ``in-memory``/``later``; stamps each event it gets."""

    def __init__(self) -> None:
        self.got: list[tuple[float, appcallback_pb2.TopicEventRequest]] = []
        self.lock = threading.Lock()

    def ListTopicSubscriptions(
        self, request: Any, context: Any
    ) -> appcallback_pb2.ListTopicSubscriptionsResponse:
        return appcallback_pb2.ListTopicSubscriptionsResponse(subscriptions=[
            appcallback_pb2.TopicSubscription(pubsub_name="in-memory", topic="later")])

    def OnTopicEvent(
        self, request: appcallback_pb2.TopicEventRequest, context: Any
    ) -> appcallback_pb2.TopicEventResponse:
        with self.lock:
            self.got.append((time.time(), request))
        return appcallback_pb2.TopicEventResponse(
            status=appcallback_pb2.TopicEventResponse.SUCCESS)

    def arrived(self) -> dict[str, list[tuple[float, appcallback_pb2.TopicEventRequest]]]:
        with self.lock:
            by_id: dict[str, list[tuple[float, appcallback_pb2.TopicEventRequest]]] = {}
            for when, event in self.got:
                by_id.setdefault(event.id, []).append((when, event))
            return by_id


@pytest.fixture
def subscriber() -> Iterator[tuple[Subscriber, int]]:
    app = Subscriber()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    appcallback_pb2_grpc.add_AppCallbackServicer_to_server(app, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield app, port
    server.stop(None)


def wait_for(check: Any, within: float) -> None:
    deadline = time.time() + within
    while not check():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


def delay_stub(car: Sidecar) -> delay_queue_pb2_grpc.DelayQueueStub:
    return delay_queue_pb2_grpc.DelayQueueStub(car.channel())


def publish_later(car: Sidecar, data: bytes, delay: int, **metadata: str) -> tuple[str, float]:
    """The message id, and the time just before the call (the message is due ``delay`` s
    after a moment of the call)."""
    before = time.time()
    answer = delay_stub(car).PublishDelayMessage(delay_queue_pb2.DelayMessageRequest(
        component_name="in-memory", topic="later", data=data, data_content_type="text/plain",
        delay_in_seconds=delay, metadata=metadata), timeout=10)
    assert answer.message_id
    return answer.message_id, before


def test_delayed_messages_are_published_at_their_time(
        subscriber: tuple[Subscriber, int], tmp_path: Path) -> None:
    app, port = subscriber
    car = Sidecar(tmp_path, app={"id": "delays", "grpc_callback_port": port}).start()
    try:
        sent = {delay: publish_later(car, f"after {delay}".encode(), delay, key=f"k{delay}")
                for delay in (3, 1, 2, 0)}
        with grpc.insecure_channel(car.dapr_grpc_address) as channel:  # not the app's jobs
            listed = dapr_pb2_grpc.DaprStub(channel).ListJobsAlpha1(  # type: ignore[no-untyped-call]
                jobs_pb2.ListJobsRequestAlpha1(), timeout=10)
        assert list(listed.jobs) == []
        wait_for(lambda: len(app.arrived()) == 4, within=3 + LATE + 5)
        time.sleep(0.5)
        arrived = app.arrived()
        for delay, (message_id, before) in sent.items():
            [(when, event)] = arrived[message_id]  # the message id is the CloudEvent id, once
            assert event.data == f"after {delay}".encode()
            assert event.data_content_type == "text/plain"
            assert event.topic == "later" and event.pubsub_name == "in-memory"
            assert dict(event.metadata) == {"key": f"k{delay}"}
            assert before + delay <= when <= before + delay + LATE, (delay, when - before)
        order = sorted(sent, key=lambda d: arrived[sent[d][0]][0][0])
        assert order == [0, 1, 2, 3]
    finally:
        car.stop()


def test_delayed_messages_are_published_after_a_restart_in_between(
        subscriber: tuple[Subscriber, int], tmp_path: Path) -> None:
    app, port = subscriber
    car = Sidecar(tmp_path, app={"id": "delays", "grpc_callback_port": port}).start()
    try:
        sent = {delay: publish_later(car, f"after {delay}".encode(), delay)
                for delay in (6, 8)}
        car.stop()
        stopped = time.time()
        time.sleep(1.0)
        car.start()  # the same data folder: the jobs are in its sqlite store
        assert time.time() - stopped < 6, "the restart took longer than the first delay"
        wait_for(lambda: len(app.arrived()) == 2, within=8 + LATE + 5)
        time.sleep(0.5)
        arrived = app.arrived()
        for delay, (message_id, before) in sent.items():
            [(when, event)] = arrived[message_id]
            assert event.data == f"after {delay}".encode()
            assert before + delay <= when <= before + delay + LATE, (delay, when - before)
    finally:
        car.stop()


def test_refusals_are_layottos(tmp_path: Path) -> None:
    car = Sidecar(tmp_path).start()
    try:
        stub = delay_stub(car)
        with pytest.raises(grpc.RpcError) as caught:
            stub.PublishDelayMessage(delay_queue_pb2.DelayMessageRequest(
                component_name="nope", topic="t", delay_in_seconds=5), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == "component not found. kind: delay_queue , name: nope"
        with pytest.raises(grpc.RpcError) as caught:
            stub.PublishDelayMessage(delay_queue_pb2.DelayMessageRequest(
                component_name="in-memory", delay_in_seconds=5), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == "topic is empty in pubsub in-memory"
    finally:
        car.stop()
