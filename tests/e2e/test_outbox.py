"""The transactional outbox end to end, with the Dapr 1.19 SDK and Dapr component YAML: on each
transactional store, a committed transaction's upserts reach a subscriber, a rolled-back
transaction's never do, and transactions committed while the broker is cut are published once
it is back.

The broker is a ``redis-server`` the test starts (``pubsub.redis``). The publishing sidecar
(every store, each with ``outboxPublishPubsub`` / ``outboxPublishTopic``) reaches it through a
TCP proxy the test cuts; the subscribing sidecar (another service, as in production) reaches it
directly and hands the events to a Dapr SDK streaming subscription.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.redis_servers import start_redis
from tests.support.servers import require
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.timeout(300), pytest.mark.e2e]

RUN = uuid.uuid4().hex[:8]
STORES: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "sqlite": ("state.sqlite", {"tableName": f"outbox_{RUN}"}, []),
    "in-memory": ("state.in-memory", {}, []),
    "postgresql": ("state.postgresql", {
        "connectionString": "postgres://postgres@127.0.0.1:5432/test",
        "tableName": f"outbox_{RUN}"}, ["postgresql"]),
    "mysql": ("state.mysql", {"connectionString": "root:@tcp(127.0.0.1:3306)/test",
                              "tableName": f"outbox_{RUN}"}, ["mysql"]),
    "redis": ("state.redis", {"redisHost": "127.0.0.1:6379"}, ["redis"]),
    "etcd": ("state.etcd", {"endpoints": "127.0.0.1:2379", "keyPrefixPath": f"outbox-{RUN}"},
             ["etcd"]),
    "zookeeper": ("state.zookeeper", {"servers": "127.0.0.1:2181",
                                      "keyPrefixPath": f"/outbox-{RUN}"}, ["zookeeper"]),
}


def manifest(name: str, kind: str, metadata: dict[str, str]) -> str:
    items = "".join(f"  - name: {key}\n    value: {json.dumps(value)}\n"
                    for key, value in metadata.items())
    return (f"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
            f"spec:\n  type: {kind}\n  version: v1\n  metadata:\n{items}")


def resources(folder: Path, broker_port: int, with_stores: bool) -> Path:
    folder.mkdir(parents=True)
    docs = [manifest("broker", "pubsub.redis", {
        "redisHost": f"127.0.0.1:{broker_port}", "processingTimeout": "2s",
        "redeliverInterval": "1s", "timeout": "2s"})]
    if with_stores:
        for name, (kind, metadata, _) in STORES.items():
            docs.append(manifest(name, kind, {**metadata, "outboxPublishPubsub": "broker",
                                              "outboxPublishTopic": f"orders-{name}"}))
    (folder / "components.yaml").write_text("---\n".join(docs))
    return folder


@pytest.fixture(scope="module")
def broker() -> Iterator[int]:
    port = free_port()
    server = start_redis(port)
    yield port
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="module")
def proxy(broker: int) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", broker) as cut_able:
        yield cut_able


@pytest.fixture(scope="module")
def publisher(tmp_path_factory: pytest.TempPathFactory, proxy: TcpProxy) -> Iterator[Sidecar]:
    require("postgresql", "mysql", "redis", "etcd", "zookeeper")
    work = tmp_path_factory.mktemp("outbox-publisher")
    folder = resources(work / "components", proxy.port, with_stores=True)
    car = Sidecar(work / "car", components={}, app={"app_id": f"orders-{RUN}"},
                  extra_args=["--resources-path", str(folder)]).start()
    yield car
    car.stop()


@pytest.fixture(scope="module")
def subscriber(tmp_path_factory: pytest.TempPathFactory, broker: int) -> Iterator[Sidecar]:
    work = tmp_path_factory.mktemp("outbox-subscriber")
    folder = resources(work / "components", broker, with_stores=False)
    car = Sidecar(work / "car", components={}, app={"app_id": f"shipping-{RUN}"},
                  extra_args=["--resources-path", str(folder)]).start()
    yield car
    car.stop()


class Inbox:
    """A Dapr SDK streaming subscription read by a thread into a queue."""

    def __init__(self, car: Sidecar, topic: str) -> None:
        self.client = DaprClient(car.dapr_grpc_address)
        self.subscription = self.client.subscribe("broker", topic)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.subscription.next_message()
            except Exception:  # the stream closed at the end of the test
                return
            if message is None:
                continue
            self.events.put({"id": message.id(), "data": message.data(),
                             "source": message.source(), "topic": message.topic(),
                             "type": message.type()})
            self.subscription.respond_success(message)

    def until(self, count: int, within: float) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while len(got) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(got)} of {count} events arrived: {got}"
            try:
                got.append(self.events.get(timeout=left))
            except queue.Empty:
                continue
        return got

    def quiet(self, seconds: float) -> list[dict[str, Any]]:
        time.sleep(seconds)
        got = []
        while not self.events.empty():
            got.append(self.events.get_nowait())
        return got

    def close(self) -> None:
        self.subscription.close()
        self.client.close()


def live(inbox: Inbox, dapr: DaprClient, store: str) -> dict[str, Any]:
    """The first committed order, once the subscription is live (earlier ones may be lost to
    a consumer group not made yet); later copies of the probe are drained."""
    deadline = time.monotonic() + 30
    while True:
        dapr.execute_state_transaction(store, [upsert("order-0", {"n": 0})])
        try:
            first = inbox.until(1, within=3)[0]
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the subscription never came up"
    inbox.quiet(1.5)
    return first


def upsert(key: str, value: dict[str, Any], etag: str | None = None) -> Any:
    return TransactionalStateOperation(key=key, data=json.dumps(value), etag=etag,
                                       metadata={"contentType": "application/json"})


@pytest.mark.parametrize("store", list(STORES))
def test_published_if_and_only_if_committed_with_the_broker_cut(
    store: str, publisher: Sidecar, subscriber: Sidecar, proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the SDK's health check (and its stream reconnects) ask the subscriber's sidecar
    monkeypatch.setenv("DAPR_HTTP_PORT", str(subscriber.dapr_http_port))
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")
    topic = f"orders-{store}"
    inbox = Inbox(subscriber, topic)
    try:
        with DaprClient(publisher.dapr_grpc_address) as dapr:
            first = live(inbox, dapr, store)
            assert first["data"] == {"n": 0}  # the SDK decodes application/json data
            assert first["source"] == f"orders-{RUN}"
            assert first["type"] == "com.dapr.event.sent"  # daprd's outbox event type

            proxy.cut()
            try:
                dapr.execute_state_transaction(store, [upsert("order-1", {"n": 1}),
                                                       upsert("order-2", {"n": 2})])
                stale = dapr.get_state(store, "order-1").etag
                dapr.execute_state_transaction(store, [upsert("order-1", {"n": 11},
                                                              etag=stale)])
                with pytest.raises(DaprGrpcError):  # rolled back: a stale etag
                    dapr.execute_state_transaction(store, [
                        upsert("order-x", {"n": -1}),
                        upsert("order-1", {"n": -2}, etag=stale)])
                time.sleep(2)  # the relay tries, and fails, meanwhile
                assert inbox.quiet(0.5) == []
                assert f"outbox of state store {store}: publishing failed" in publisher.logs()
            finally:
                proxy.restore()

            arrived = inbox.until(3, within=60)
            arrived += inbox.quiet(3)
            numbers = sorted({event["data"]["n"] for event in arrived})
            assert numbers == [1, 2, 11]  # committed: all; rolled back (-1, -2): none
            assert json.loads(dapr.get_state(store, "order-1").data) == {"n": 11}
            assert dapr.get_state(store, "order-x").data == b""
    finally:
        inbox.close()


@pytest.mark.parametrize("store", [name for name in STORES if name != "in-memory"])
def test_committed_messages_survive_a_sidecar_crash_while_the_broker_is_cut(
    store: str, publisher: Sidecar, subscriber: Sidecar, proxy: TcpProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The records live in the store: a publisher killed (SIGKILL) before it could publish
    sends them after its restart."""
    monkeypatch.setenv("DAPR_HTTP_PORT", str(subscriber.dapr_http_port))
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")
    inbox = Inbox(subscriber, f"orders-{store}")
    try:
        with DaprClient(publisher.dapr_grpc_address) as dapr:
            live(inbox, dapr, store)
            proxy.cut()
            try:
                dapr.execute_state_transaction(store, [upsert("crash-1", {"n": 21}),
                                                       upsert("crash-2", {"n": 22})])
                time.sleep(0.5)
                publisher.stop(signal.SIGKILL)
            finally:
                proxy.restore()
        assert inbox.quiet(0.5) == []
        publisher.start()
        arrived = inbox.until(2, within=60) + inbox.quiet(2)
        assert sorted({event["data"]["n"] for event in arrived}) == [21, 22]
    finally:
        inbox.close()


def test_an_http_transaction_is_published_as_dapr_documents_it(
    publisher: Sidecar, subscriber: Sidecar, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dapr's outbox how-to: ``POST /v1.0/state/<store>/transaction`` with a projection; the
    subscriber gets the projected value, the store keeps the saved one."""
    import urllib.request

    monkeypatch.setenv("DAPR_HTTP_PORT", str(subscriber.dapr_http_port))
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")
    inbox = Inbox(subscriber, "orders-sqlite")
    try:
        with DaprClient(publisher.dapr_grpc_address) as dapr:
            live(inbox, dapr, "sqlite")
        body = {"operations": [
            {"operation": "upsert", "request": {"key": "order-h", "value": {"n": 31, "card": "x"}}},
            {"operation": "upsert", "request": {"key": "order-h", "value": {"n": 31},
                                                "metadata": {"outbox.projection": "true"}}},
        ]}
        request = urllib.request.Request(
            f"{publisher.dapr_http_url}/v1.0/state/sqlite/transaction",
            data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 204
        [event] = inbox.until(1, within=30) + inbox.quiet(1)
        assert json.loads(event["data"]) == {"n": 31}  # published: the projection, as text
        with urllib.request.urlopen(f"{publisher.dapr_http_url}/v1.0/state/sqlite/order-h",
                                    timeout=10) as reply:
            assert json.load(reply) == {"n": 31, "card": "x"}
    finally:
        inbox.close()
