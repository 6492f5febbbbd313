"""PublishEvent / AppCallback delivery / SubscribeTopicEvents against the real sidecar."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from pylotto.proto.layotto import (
    appcallback_pb2,
    appcallback_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from tests.e2e.sidecar import Sidecar

pytestmark = pytest.mark.e2e

Status = appcallback_pb2.TopicEventResponse
FAST_RETRY = {"backOffInitialInterval": "50ms", "backOffRandomizationFactor": "0",
              "backOffMaxInterval": "200ms"}
PUBSUB = {"pubsub": {"in-memory": {"type": "in-memory", "metadata": FAST_RETRY}}}


class App(appcallback_pb2_grpc.AppCallbackServicer):
    """The app's AppCallback server: subscribes to ``orders``, answers per ``answer``."""

    def __init__(self, answer: Callable[[int], int] = lambda seen: Status.SUCCESS) -> None:
        self.answer = answer
        self.events: queue.Queue[appcallback_pb2.TopicEventRequest] = queue.Queue()
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def ListTopicSubscriptions(
        self, request: Any, context: Any
    ) -> appcallback_pb2.ListTopicSubscriptionsResponse:
        return appcallback_pb2.ListTopicSubscriptionsResponse(
            subscriptions=[appcallback_pb2.TopicSubscription(pubsub_name="in-memory",
                                                             topic="orders")]
        )

    def OnTopicEvent(
        self, request: appcallback_pb2.TopicEventRequest, context: Any
    ) -> appcallback_pb2.TopicEventResponse:
        with self.lock:
            seen = self.seen.get(request.id, 0)
            self.seen[request.id] = seen + 1
        self.events.put(request)
        return appcallback_pb2.TopicEventResponse(status=self.answer(seen))

    def next(self, timeout: float = 5.0) -> appcallback_pb2.TopicEventRequest:
        return self.events.get(timeout=timeout)

    def nothing_more(self, wait: float = 0.5) -> bool:
        try:
            self.events.get(timeout=wait)
        except queue.Empty:
            return True
        return False


def serve(app: App) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    appcallback_pb2_grpc.add_AppCallbackServicer_to_server(app, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.fixture
def app_server() -> Iterator[tuple[App, int]]:
    app = App()
    server, port = serve(app)
    yield app, port
    server.stop(None)


def publish(car: Sidecar, data: bytes, content_type: str = "", **metadata: str) -> None:
    car.stub().PublishEvent(
        runtime_pb2.PublishEventRequest(
            pubsub_name="in-memory", topic="orders", data=data,
            data_content_type=content_type, metadata=metadata,
        )
    )


def test_events_reach_the_app_callback(
    start_sidecar: Callable[..., Sidecar], app_server: tuple[App, int]
) -> None:
    app, port = app_server
    car = start_sidecar(app={"id": "subapp", "grpc_callback_port": port})
    publish(car, b'{"order": 1}', "application/json", key="k1")
    event = app.next()
    assert uuid.UUID(event.id).version == 4
    assert event.source == "subapp"
    assert event.type == "com.dapr.event.sent"
    assert event.spec_version == "1.0"
    assert event.data_content_type == "application/json"
    assert event.topic == "orders"
    assert event.pubsub_name == "in-memory"
    assert event.data == b'{"order":1}'
    assert dict(event.metadata) == {"key": "k1"}
    publish(car, b"\x00\xffbinary", "application/octet-stream")
    assert app.next().data == b"\x00\xffbinary"
    publish(car, b"plain text")
    second = app.next()
    assert (second.data, second.data_content_type) == (b"plain text", "text/plain")
    assert app.nothing_more()


def test_retry_then_success_redelivers(start_sidecar: Callable[..., Sidecar]) -> None:
    app = App(answer=lambda seen: Status.RETRY if seen < 2 else Status.SUCCESS)
    server, port = serve(app)
    try:
        car = start_sidecar(components=PUBSUB, app={"id": "subapp", "grpc_callback_port": port})
        publish(car, b"again")
        first, second, third = app.next(), app.next(), app.next()
        assert first.id == second.id == third.id
        assert third.data == b"again"
        assert app.nothing_more()
    finally:
        server.stop(None)


def test_app_started_after_the_sidecar(start_sidecar: Callable[..., Sidecar]) -> None:
    from tests.e2e.sidecar import free_port

    port = free_port()
    car = start_sidecar(components=PUBSUB, app={"id": "late", "grpc_callback_port": port})
    app = App()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    appcallback_pb2_grpc.add_AppCallbackServicer_to_server(app, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        deadline = time.monotonic() + 15
        while "subscribed to topic orders" not in car.logs():
            assert time.monotonic() < deadline, car.logs()
            time.sleep(0.1)
        publish(car, b"hello late app")
        assert app.next().data == b"hello late app"
    finally:
        server.stop(None)


@pytest.mark.parametrize(
    ("name", "topic", "code", "message"),
    [
        ("", "orders", grpc.StatusCode.INVALID_ARGUMENT, "pubsub name is empty"),
        ("in-memory", "", grpc.StatusCode.INVALID_ARGUMENT, "topic is empty in pubsub in-memory"),
        ("nope", "orders", grpc.StatusCode.INVALID_ARGUMENT, "pubsub nope not found"),
    ],
)
def test_publish_errors(
    sidecar: Sidecar, name: str, topic: str, code: grpc.StatusCode, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        sidecar.stub().PublishEvent(
            runtime_pb2.PublishEventRequest(pubsub_name=name, topic=topic, data=b"x")
        )
    assert caught.value.code() == code
    assert caught.value.details() == message


def test_publish_bad_ttl_and_cloudevent(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    for request in (
        runtime_pb2.PublishEventRequest(pubsub_name="in-memory", topic="t", data=b"x",
                                        metadata={"ttlInSeconds": "soon"}),
        runtime_pb2.PublishEventRequest(pubsub_name="in-memory", topic="t", data=b"[1]",
                                        data_content_type="application/cloudevents+json"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.PublishEvent(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_publish_without_pubsub_configured(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_sidecar(
        components={"hello": {"quick_start_demo": {"type": "helloworld", "metadata": {}}}}
    )
    with pytest.raises(grpc.RpcError) as caught:
        car.stub().PublishEvent(
            runtime_pb2.PublishEventRequest(pubsub_name="in-memory", topic="t", data=b"x")
        )
    # Layotto has no "not configured" answer for pub/sub: the name is not found
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "pubsub in-memory not found"


# ---- SubscribeTopicEvents ---------------------------------------------------------------------


class Subscriber:
    """A SubscribeTopicEvents call driven from the test thread."""

    def __init__(self, car: Sidecar, topic: str = "orders", **metadata: str) -> None:
        self.outgoing: queue.Queue[runtime_pb2.SubscribeTopicEventsRequest | None] = queue.Queue()
        self.outgoing.put(
            runtime_pb2.SubscribeTopicEventsRequest(
                initial_request=runtime_pb2.SubscribeTopicEventsRequestInitial(
                    pubsub_name="in-memory", topic=topic, metadata=metadata
                )
            )
        )
        # Its own channel: Sidecar.stop() closes the channels it made before signalling.
        self.channel = grpc.insecure_channel(car.grpc_address)
        stub = runtime_pb2_grpc.RuntimeStub(self.channel)
        self.responses = stub.SubscribeTopicEvents(iter(self.outgoing.get, None))
        self.incoming: queue.Queue[Any] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        first = self.incoming.get(timeout=5)
        assert first.HasField("initial_response"), first

    def _read(self) -> None:
        try:
            for response in self.responses:
                self.incoming.put(response)
            self.incoming.put("end")
        except grpc.RpcError as exc:
            self.incoming.put(exc)

    def next(self, timeout: float = 5.0) -> appcallback_pb2.TopicEventRequest:
        response = self.incoming.get(timeout=timeout)
        assert not isinstance(response, str | grpc.RpcError), response
        assert response.HasField("event_message")
        return response.event_message

    def answer(self, event_id: str, status: int) -> None:
        self.outgoing.put(
            runtime_pb2.SubscribeTopicEventsRequest(
                event_processed=runtime_pb2.SubscribeTopicEventsRequestProcessed(
                    id=event_id, status=appcallback_pb2.TopicEventResponse(status=status)
                )
            )
        )

    def close(self) -> Any:
        """Half-close; returns how the server ended the stream ("end" or the RpcError)."""
        self.outgoing.put(None)
        try:
            while True:
                item = self.incoming.get(timeout=10)
                if isinstance(item, str | grpc.RpcError):
                    return item
        finally:
            self.channel.close()


def test_subscribe_stream_without_callback_server(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_sidecar(components=PUBSUB, app={"id": "streamer"})
    sub = Subscriber(car)
    publish(car, b'{"n":1}', "application/json")
    event = sub.next()
    assert (event.topic, event.pubsub_name, event.source) == ("orders", "in-memory", "streamer")
    assert event.data == b'{"n":1}'
    sub.answer(event.id, Status.RETRY)
    again = sub.next()
    assert again.id == event.id
    sub.answer(again.id, Status.SUCCESS)
    publish(car, b"second")
    second = sub.next()
    assert second.data == b"second"
    sub.answer(second.id, Status.DROP)
    assert sub.close() == "end"


def test_closing_a_stream_unsubscribes_and_redelivers(
    start_sidecar: Callable[..., Sidecar],
) -> None:
    car = start_sidecar(components=PUBSUB, app={"id": "streamer"})
    first = Subscriber(car)
    publish(car, b"held")
    held = first.next()
    assert first.close() == "end"  # never answered: goes back to the group
    publish(car, b"while away")
    second = Subscriber(car)
    got = [second.next(), second.next()]
    assert [e.data for e in got] == [b"held", b"while away"]
    assert got[0].id == held.id
    for event in got:
        second.answer(event.id, Status.SUCCESS)
    assert second.close() == "end"


def test_two_streams_share_one_topic(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_sidecar(components=PUBSUB, app={"id": "streamer"})
    subs = [Subscriber(car), Subscriber(car)]
    received: list[bytes] = []
    for i in range(10):
        publish(car, str(i).encode())
    lock = threading.Lock()

    def drain(sub: Subscriber) -> None:
        while True:
            try:
                event = sub.next(timeout=1.0)
            except queue.Empty:
                return
            with lock:
                received.append(event.data)
            sub.answer(event.id, Status.SUCCESS)

    threads = [threading.Thread(target=drain, args=(s,)) for s in subs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(received, key=int) == [str(i).encode() for i in range(10)]
    for sub in subs:
        assert sub.close() == "end"


def test_stream_must_start_with_initial_request(sidecar: Sidecar) -> None:
    processed = runtime_pb2.SubscribeTopicEventsRequest(
        event_processed=runtime_pb2.SubscribeTopicEventsRequestProcessed(id="x")
    )
    with pytest.raises(grpc.RpcError) as caught:
        list(sidecar.stub().SubscribeTopicEvents(iter([processed])))
    # a plain error in Layotto (api_subscribe.go), as in daprd: Unknown
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    assert caught.value.details() == "initial request is required"


def test_stream_on_unknown_pubsub(sidecar: Sidecar) -> None:
    initial = runtime_pb2.SubscribeTopicEventsRequest(
        initial_request=runtime_pb2.SubscribeTopicEventsRequestInitial(
            pubsub_name="nope", topic="t"
        )
    )
    with pytest.raises(grpc.RpcError) as caught:
        list(sidecar.stub().SubscribeTopicEvents(iter([initial])))
    assert caught.value.code() == grpc.StatusCode.UNKNOWN  # Layotto's plain error
    assert caught.value.details() == "pubsub nope is not initialized."


def test_sigterm_ends_open_streams(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_sidecar(components=PUBSUB, app={"id": "streamer"})
    sub = Subscriber(car)
    publish(car, b"x")
    event = sub.next()
    sub.answer(event.id, Status.SUCCESS)
    assert car.stop() == 0
    assert sub.incoming.get(timeout=10) == "end"
    sub.channel.close()


@pytest.mark.parametrize(("name", "topic", "message"), [
    ("", "t", "pubsubName is required"), ("in-memory", "", "topic is required")])
def test_stream_without_name_or_topic(sidecar: Sidecar, name: str, topic: str,
                                      message: str) -> None:
    """Layotto's plain errors (api_subscribe.go): Unknown."""
    initial = runtime_pb2.SubscribeTopicEventsRequest(
        initial_request=runtime_pb2.SubscribeTopicEventsRequestInitial(
            pubsub_name=name, topic=topic))
    with pytest.raises(grpc.RpcError) as caught:
        list(sidecar.stub().SubscribeTopicEvents(iter([initial])))
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.UNKNOWN, message)
