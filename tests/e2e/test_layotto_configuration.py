"""Configuration API through the real sidecar (embedded ``in-memory`` store)."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar

STORE = "in-memory"
Stub = runtime_pb2_grpc.RuntimeStub
Item = runtime_pb2.ConfigurationItem


def fresh(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def error_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def save(stub: Stub, *items: Item, app_id: str = "", store: str = STORE) -> None:
    stub.SaveConfiguration(runtime_pb2.SaveConfigurationRequest(
        store_name=store, app_id=app_id, items=list(items)), timeout=10)


def get(stub: Stub, *keys: str, app_id: str = "", group: str = "", label: str = "",
        store: str = STORE) -> list[tuple[str, str, str, str]]:
    reply = stub.GetConfiguration(runtime_pb2.GetConfigurationRequest(
        store_name=store, app_id=app_id, group=group, label=label, keys=list(keys)), timeout=10)
    return [(i.key, i.content, i.group, i.label) for i in reply.items]


class Subscriber:
    """A SubscribeConfiguration stream read by a thread into a queue.

    Each subscription also watches a key of its own, ``ready``: saving it until it comes back
    tells when the sidecar has registered the subscription (that happens asynchronously).
    """

    def __init__(self, stub: Stub, *keys: str, app_id: str = "", store: str = STORE) -> None:
        self.ready = fresh("ready")
        self.app_id = app_id
        self.sending = threading.Event()  # cleared: the client closes its sending side
        self.sending.set()
        request = runtime_pb2.SubscribeConfigurationRequest(
            store_name=store, app_id=app_id, keys=[*keys, self.ready])
        self.call = stub.SubscribeConfiguration(self._requests(request))
        self.updates: queue.Queue[runtime_pb2.SubscribeConfigurationResponse | Exception] = (
            queue.Queue())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _requests(self, request: runtime_pb2.SubscribeConfigurationRequest,
                  ) -> Iterator[runtime_pb2.SubscribeConfigurationRequest]:
        """One request, then the sending side stays open until :meth:`half_close`."""
        yield request
        while self.sending.is_set():
            time.sleep(0.05)

    def half_close(self) -> None:
        self.sending.clear()

    def _read(self) -> None:
        try:
            for update in self.call:
                self.updates.put(update)
        except Exception as exc:
            self.updates.put(exc)

    def next(self, timeout: float = 5) -> runtime_pb2.SubscribeConfigurationResponse:
        got = self.updates.get(timeout=timeout)
        if isinstance(got, Exception):
            raise got
        return got

    def wait_subscribed(self, writer: Stub) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            save(writer, Item(key=self.ready, content="ping"), app_id=self.app_id)
            try:
                update = self.next(timeout=0.2)
            except queue.Empty:
                continue
            assert [i.key for i in update.items] == [self.ready]
            time.sleep(0.2)
            while not self.updates.empty():  # pings saved while the first one travelled
                assert [i.key for i in self.next().items] == [self.ready]
            return
        raise AssertionError("subscription never became active")

    def close(self) -> None:
        self.sending.clear()
        self.call.cancel()
        self.thread.join(5)


def test_save_get_delete(sidecar: Sidecar) -> None:
    stub, app = sidecar.stub(), fresh("app")
    save(stub, Item(key="db", content="pg://x", tags={"env": "prod"}),
         Item(key="cache", content="redis://", group="infra", label="v2"), app_id=app)
    assert get(stub, "db", "missing", app_id=app) == [("db", "pg://x", "default", "default")]
    assert get(stub, app_id=app, group="infra", label="v2") == [
        ("cache", "redis://", "infra", "v2")]
    reply = stub.GetConfiguration(runtime_pb2.GetConfigurationRequest(
        store_name=STORE, app_id=app, keys=["db"]))
    assert dict(reply.items[0].tags) == {"env": "prod"}
    assert get(stub, "db", app_id=fresh("other")) == []
    stub.DeleteConfiguration(runtime_pb2.DeleteConfigurationRequest(
        store_name=STORE, app_id=app, keys=["db"]), timeout=10)
    assert get(stub, "db", app_id=app) == []
    save(stub, Item(key="cache", content="", group="infra", label="v2"), app_id=app)
    assert get(stub, app_id=app, group="infra", label="v2") == []


def test_bad_requests(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    bad = grpc.StatusCode.INVALID_ARGUMENT
    # an unknown store: Layotto's plain error (api_configuration.go), grpc-go's Unknown
    unknown = (grpc.StatusCode.UNKNOWN, "configure store [nope] don't support now")
    assert error_of(lambda: get(stub, "k", store="nope")) == unknown
    assert error_of(lambda: get(stub, "k", store="")) == (
        grpc.StatusCode.UNKNOWN, "configure store [] don't support now")
    assert error_of(lambda: save(stub, Item(key="k", content="v"), store="nope")) == unknown
    assert error_of(lambda: save(stub, Item(key="", content="v"))) == (
        bad, "configuration item key is empty")
    assert error_of(lambda: stub.DeleteConfiguration(runtime_pb2.DeleteConfigurationRequest(
        store_name="nope", keys=["k"]))) == unknown


def test_subscribe_receives_saves_from_another_channel(sidecar: Sidecar) -> None:
    app, key = fresh("app"), fresh("feature")
    writer = sidecar.stub()  # a channel of its own
    subscriber = Subscriber(sidecar.stub(), key, app_id=app)
    try:
        subscriber.wait_subscribed(writer)
        for n in range(5):
            save(writer, Item(key=key, content=f"v{n}"), app_id=app)
        save(writer, Item(key=fresh("unwatched"), content="x"), app_id=app)
        writer.DeleteConfiguration(runtime_pb2.DeleteConfigurationRequest(
            store_name=STORE, app_id=app, keys=[key]), timeout=10)
        got = [subscriber.next() for _ in range(6)]
        assert [[(i.key, i.content) for i in u.items] for u in got] == [
            *([(key, f"v{n}")] for n in range(5)), [(key, "")]]
        assert {(u.store_name, u.app_id) for u in got} == {(STORE, app)}
    finally:
        subscriber.close()


def test_closing_one_stream_leaves_the_others(sidecar: Sidecar) -> None:
    app, key = fresh("app"), fresh("k")
    writer = sidecar.stub()
    first = Subscriber(sidecar.stub(), key, app_id=app)
    second = Subscriber(sidecar.stub(), key, app_id=app)
    try:
        first.wait_subscribed(writer)
        second.wait_subscribed(writer)
        first.close()
        save(writer, Item(key=key, content="after"), app_id=app)
        assert [(i.key, i.content) for i in second.next().items] == [(key, "after")]
    finally:
        second.close()


def test_closing_the_sending_side_ends_the_stream_as_layotto(sidecar: Sidecar) -> None:
    """Layotto's handler returns io.EOF when the client half-closes: UNKNOWN "EOF" (grpc-go),
    after the updates already sent; the stream's subscriptions end with it."""
    app, key = fresh("app"), fresh("k")
    writer = sidecar.stub()
    subscriber = Subscriber(sidecar.stub(), key, app_id=app)
    try:
        subscriber.wait_subscribed(writer)
        save(writer, Item(key=key, content="before"), app_id=app)
        assert [(i.key, i.content) for i in subscriber.next().items] == [(key, "before")]
        subscriber.half_close()
        with pytest.raises(grpc.RpcError) as info:
            subscriber.next()
        assert (info.value.code(), info.value.details()) == (grpc.StatusCode.UNKNOWN, "EOF")
        save(writer, Item(key=key, content="after"), app_id=app)  # nobody left to tell
        assert subscriber.updates.empty()
    finally:
        subscriber.close()


def test_subscribe_to_unknown_store_ends_the_stream(sidecar: Sidecar) -> None:
    subscriber = Subscriber(sidecar.stub(), "k", store="nope")
    with pytest.raises(grpc.RpcError) as info:
        subscriber.next()
    # Layotto's plain error (pkg/grpc/default_api/api_configuration.go): grpc-go's Unknown
    assert (info.value.code(), info.value.details()) == (
        grpc.StatusCode.UNKNOWN, "configure store [nope] don't support now")


def test_no_configuration_store(start_sidecar: Callable[..., Sidecar]) -> None:
    stub = start_sidecar(components={"hello": {"h": {"type": "helloworld"}}}).stub()
    unknown = (grpc.StatusCode.UNKNOWN, "configure store [in-memory] don't support now")
    assert error_of(lambda: get(stub, "k")) == unknown  # Layotto: no lookup of its own


def test_open_streams_end_when_the_sidecar_stops(start_sidecar: Callable[..., Sidecar]) -> None:
    car = start_sidecar(components={"configuration": {STORE: {"type": "in-memory"}}})
    subscriber = Subscriber(car.stub(), "k")
    subscriber.wait_subscribed(car.stub())
    started = time.monotonic()
    assert car.stop() == 0
    assert time.monotonic() - started < 5
    subscriber.thread.join(5)
    assert not subscriber.thread.is_alive()
