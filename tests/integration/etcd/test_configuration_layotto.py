"""Layotto's etcd configuration layout (components/configstores/etcdv3 at f9681450) on the real
etcd, through ``pylotto run`` with a Layotto config (``type: etcd`` config store): keys written
as Layotto writes them (raw puts, as etcdctl would) are read by GetConfiguration and reach a
subscription, and what pylotto saves is in Layotto's keys."""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pylotto.proto.etcd import rpc_pb2 as rpc
from pylotto.proto.etcd import rpc_pb2_grpc
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.layotto_quickstart import _grpc_listener, _server, layotto_run
from tests.e2e.test_layotto_configuration import Subscriber, error_of, save
from tests.support.ports import free_port
from tests.support.servers import CONNECTION, require

STORE = "config_demo"
Item = runtime_pb2.ConfigurationItem


class Etcd:
    """Raw keys on the shared etcd, as ``etcdctl put/get/del`` see them."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.kv = rpc_pb2_grpc.KVStub(channel)

    def put(self, key: str, value: str) -> None:
        self.kv.Put(rpc.PutRequest(key=key.encode(), value=value.encode()), timeout=10)

    def delete(self, key: str) -> None:
        self.kv.DeleteRange(rpc.DeleteRangeRequest(key=key.encode()), timeout=10)

    def under(self, prefix: str) -> dict[str, str]:
        root = prefix.encode()
        end = root[:-1] + bytes([root[-1] + 1])
        reply = self.kv.Range(rpc.RangeRequest(key=root, range_end=end), timeout=10)
        return {bytes(kv.key).decode(): bytes(kv.value).decode() for kv in reply.kvs}


@pytest.fixture
def app() -> Iterator[str]:
    """A fresh app id; its keys (``/<app>/...``) are deleted afterwards."""
    require("etcd")
    app_id = f"app-{uuid.uuid4().hex[:10]}"
    yield app_id
    with grpc.insecure_channel(CONNECTION["etcd"]) as channel:
        root = f"/{app_id}/".encode()
        rpc_pb2_grpc.KVStub(channel).DeleteRange(rpc.DeleteRangeRequest(
            key=root, range_end=root[:-1] + bytes([root[-1] + 1])), timeout=10)


@pytest.fixture
def etcd() -> Iterator[Etcd]:
    with grpc.insecure_channel(CONNECTION["etcd"]) as channel:
        yield Etcd(channel)


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[runtime_pb2_grpc.RuntimeStub]:
    """``pylotto run`` with Layotto's ``runtime_config.json`` config store on the shared etcd."""
    address = f"127.0.0.1:{free_port()}"
    config = {"servers": [_server([_grpc_listener(address, {"config_store": {STORE: {
        "type": "etcd", "address": [CONNECTION["etcd"]], "timeout": "10"}}})],
        routers=False)]}
    with layotto_run(tmp_path / "pylotto", config, address), \
            grpc.insecure_channel(address) as channel:
        yield runtime_pb2_grpc.RuntimeStub(channel)


def get(stub: runtime_pb2_grpc.RuntimeStub, app: str, *keys: str, group: str = "",
        label: str = "") -> list[tuple[str, str, str, str, dict[str, str]]]:
    reply = stub.GetConfiguration(runtime_pb2.GetConfigurationRequest(
        store_name=STORE, app_id=app, group=group, label=label, keys=list(keys)), timeout=10)
    return [(i.key, i.content, i.group, i.label, dict(i.tags)) for i in reply.items]


def test_keys_layotto_wrote_are_read(stub: runtime_pb2_grpc.RuntimeStub, etcd: Etcd,
                                     app: str) -> None:
    # what Layotto's SaveConfiguration writes for {key: k1, content: v1, tags: {release: 1.0.0}}
    etcd.put(f"/{app}/default/default/k1", "v1")
    etcd.put(f"/{app}/default/default/k1/1.0.0", "v1")
    etcd.put(f"/{app}/default/default/k2", "v2")
    etcd.put(f"/{app}/infra/v2/db", "pg://x")
    etcd.put(f"/{app}/default/default/orphan/tag", "x")  # a tag key without its item
    assert get(stub, app, "k1") == [("k1", "v1", "default", "default", {"1.0.0": "v1"})]
    assert get(stub, app) == [("k1", "v1", "default", "default", {"1.0.0": "v1"}),
                              ("k2", "v2", "default", "default", {})]
    assert get(stub, app, group="infra", label="v2") == [("db", "pg://x", "infra", "v2", {})]
    # Layotto's "*": any group, label or key
    assert get(stub, app, "*", group="*", label="*") == [
        ("k1", "v1", "default", "default", {"1.0.0": "v1"}),
        ("k2", "v2", "default", "default", {}), ("db", "pg://x", "infra", "v2", {})]
    assert get(stub, app, "db", group="*", label="v2") == [("db", "pg://x", "infra", "v2", {})]


def test_saves_are_written_in_layottos_keys(stub: runtime_pb2_grpc.RuntimeStub, etcd: Etcd,
                                            app: str) -> None:
    save(stub, Item(key="k", content="c", tags={"release": "1.0.0", "feature": "print"}),
         app_id=app, store=STORE)
    assert etcd.under(f"/{app}/") == {
        f"/{app}/default/default/k": "c",
        f"/{app}/default/default/k/release=1.0.0": "c",
        f"/{app}/default/default/k/feature=print": "c"}
    assert get(stub, app, "k") == [
        ("k", "c", "default", "default", {"release": "1.0.0", "feature": "print"})]
    save(stub, Item(key="k", content="d", tags={"release": "2.0.0"}), app_id=app, store=STORE)
    assert etcd.under(f"/{app}/") == {f"/{app}/default/default/k": "d",
                                      f"/{app}/default/default/k/release=2.0.0": "d"}
    stub.DeleteConfiguration(runtime_pb2.DeleteConfigurationRequest(
        store_name=STORE, app_id=app, keys=["k"]), timeout=10)
    assert etcd.under(f"/{app}/") == {}
    code, message = error_of(lambda: save(stub, Item(key="a/b", content="x"), app_id=app,
                                          store=STORE))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "can't contain '/'" in message


def wait_subscribed(subscriber: Subscriber, etcd: Etcd, app: str) -> None:
    """Put the subscriber's own ``ready`` key until it comes back, then drain the echoes."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        etcd.put(f"/{app}/default/default/{subscriber.ready}", "ping")
        try:
            update = subscriber.next(timeout=0.2)
        except queue.Empty:
            continue
        assert [i.key for i in update.items] == [subscriber.ready]
        time.sleep(0.2)
        while not subscriber.updates.empty():
            assert [i.key for i in subscriber.next().items] == [subscriber.ready]
        return
    raise AssertionError("subscription never became active")


def test_a_subscription_sees_raw_puts_and_deletes(stub: runtime_pb2_grpc.RuntimeStub,
                                                  etcd: Etcd, app: str) -> None:
    subscriber = Subscriber(stub, "feature", app_id=app, store=STORE)
    try:
        wait_subscribed(subscriber, etcd, app)
        etcd.put(f"/{app}/default/default/feature", "on")
        etcd.put(f"/{app}/default/default/unwatched", "x")
        etcd.delete(f"/{app}/default/default/feature")
        got = [subscriber.next() for _ in range(2)]
        assert [[(i.key, i.content, i.group, i.label) for i in u.items] for u in got] == [
            [("feature", "on", "default", "default")], [("feature", "", "default", "default")]]
        # pylotto's save: the item and its tag keys in one revision, one update with the tags
        save(stub, Item(key="feature", content="off", tags={"since": "v3"}), app_id=app,
             store=STORE)
        update = subscriber.next()
        assert [(i.key, i.content, dict(i.tags)) for i in update.items] == [
            ("feature", "off", {"since": "v3"})]
    finally:
        subscriber.close()
