"""The official Dapr Python SDK (dapr 1.19.0) against a real ``pylotto run``: every
DaprClient method pylotto serves, over Dapr's gRPC and HTTP ports."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency as DaprConcurrency
from dapr.clients.grpc._state import StateOptions

from tests.e2e.sidecar import Sidecar

APP_ID = "daprapp"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def dapr_sidecar(tmp_path_factory: pytest.TempPathFactory, echo_port: int) -> Iterator[Sidecar]:
    """Embedded components plus an http binding, a secrets file and the echo app."""
    workdir = tmp_path_factory.mktemp("dapr")
    secrets = workdir / "secrets.json"
    secrets.write_text(json.dumps({"db": {"password": "s3cret"}, "token": "t"}))
    car = Sidecar(workdir, app={"app_id": APP_ID, "port": echo_port})
    car.components = _embedded_plus({
        "bindings": {"echo": {"type": "http",
                              "metadata": {"url": f"http://127.0.0.1:{echo_port}/hook"}}},
        "secretstores": {"files": {"type": "local.file",
                                   "metadata": {"secretsFile": str(secrets)}}},
    })
    car.start()
    yield car
    car.stop()


def _embedded_plus(extra: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from pylotto.config.model import embedded_default

    components: dict[str, Any] = {}
    for spec in embedded_default().components:
        components.setdefault(spec.capability, {})[spec.name] = {
            "type": spec.type, "metadata": spec.metadata}
    for capability, entries in extra.items():
        components.setdefault(capability, {}).update(entries)
    return components


@pytest.fixture
def dapr(dapr_sidecar: Sidecar, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaprClient]:
    """A DaprClient configured the way `dapr run` configures an app: environment only."""
    monkeypatch.setenv("DAPR_HTTP_PORT", str(dapr_sidecar.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(dapr_sidecar.dapr_grpc_port))
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")
    with DaprClient() as client:
        yield client


def test_state(dapr: DaprClient) -> None:
    dapr.save_state("sqlite", "k1", "v1")
    got = dapr.get_state("sqlite", "k1")
    assert got.data == b"v1" and got.etag
    dapr.save_state("sqlite", "k1", "v2", etag=got.etag)
    with pytest.raises(DaprGrpcError) as info:
        dapr.save_state("sqlite", "k1", "v3", etag=got.etag)
    assert info.value.code() == grpc.StatusCode.ABORTED
    with pytest.raises(DaprGrpcError) as info:
        dapr.save_state("sqlite", "k1", "v3", etag="not-a-number")
    assert info.value.code() == grpc.StatusCode.ABORTED  # Dapr's sqlite compares text
    dapr.save_state("sqlite", "first", "x",
                    options=StateOptions(concurrency=DaprConcurrency.first_write))
    with pytest.raises(DaprGrpcError) as info:
        dapr.save_state("sqlite", "first", "y",
                        options=StateOptions(concurrency=DaprConcurrency.first_write))
    assert info.value.code() == grpc.StatusCode.ABORTED
    dapr.save_state("sqlite", "short", "lived", state_metadata={"ttlInSeconds": "1"})
    assert dapr.get_state("sqlite", "short").data == b"lived"
    deadline = time.monotonic() + 10
    while dapr.get_state("sqlite", "short").data and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dapr.get_state("sqlite", "short").data == b""
    bulk = dapr.get_bulk_state("sqlite", ["k1", "first", "missing"]).items
    assert [(i.key, i.data) for i in bulk] == [("k1", b"v2"), ("first", b"x"), ("missing", b"")]
    dapr.execute_state_transaction("sqlite", [
        TransactionalStateOperation(key="t1", data=json.dumps({"n": 1})),
        TransactionalStateOperation(key="k1", operation_type=TransactionOperationType.delete),
    ])
    assert json.loads(dapr.get_state("sqlite", "t1").data) == {"n": 1}
    assert dapr.get_state("sqlite", "k1").data == b""
    dapr.delete_state("sqlite", "t1")
    assert dapr.get_state("sqlite", "t1").data == b""
    with pytest.raises(DaprGrpcError) as info:
        dapr.get_state("no-such-store", "k")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_query_state(dapr: DaprClient) -> None:
    for n in range(5):
        dapr.save_state("in-memory", f"q{n}", json.dumps({"n": n, "even": n % 2 == 0}))
    query = {"filter": {"EQ": {"even": True}}, "sort": [{"key": "n", "order": "DESC"}],
             "page": {"limit": 2}}
    first = dapr.query_state("in-memory", json.dumps(query))
    assert [r.key for r in first.results] == ["q4", "q2"] and first.token
    query["page"] = {"limit": 2, "token": first.token}
    second = dapr.query_state("in-memory", json.dumps(query))
    assert [r.key for r in second.results] == ["q0"] and not second.token


def test_publish_and_streaming_subscription(dapr: DaprClient) -> None:
    subscription = dapr.subscribe("in-memory", "orders")
    try:
        dapr.publish_event("in-memory", "orders", json.dumps({"id": 1}),
                           data_content_type="application/json")
        message = subscription.next_message()
        assert message is not None
        assert message.topic() == "orders" and message.pubsub_name() == "in-memory"
        assert json.loads(message.data() if isinstance(message.data(), str)
                          else json.dumps(message.data())) == {"id": 1}
        subscription.respond_success(message)
        result = dapr.publish_events("in-memory", "orders", ["a", "b"],
                                     data_content_type="text/plain")
        assert result.failed_entries == []
        seen = []
        for _ in range(2):
            message = subscription.next_message()
            assert message is not None
            seen.append(message.data())
            subscription.respond_success(message)
        assert sorted(seen) == ["a", "b"]
    finally:
        subscription.close()


def test_binding_and_secrets(dapr: DaprClient) -> None:
    result = dapr.invoke_binding("echo", "post", "ping")
    assert json.loads(result.data) == {"method": "POST", "path": "/hook", "body": "ping"}
    assert dapr.get_secret("files", "db:password").secret == {"db:password": "s3cret"}
    assert dapr.get_bulk_secret("files").secrets["token"] == {"token": "t"}


def test_configuration(dapr: DaprClient, dapr_sidecar: Sidecar) -> None:
    from pylotto.proto.layotto import runtime_pb2

    layotto = dapr_sidecar.stub()

    def save(key: str, content: str) -> None:
        layotto.SaveConfiguration(runtime_pb2.SaveConfigurationRequest(
            store_name="in-memory", app_id=APP_ID,
            items=[runtime_pb2.ConfigurationItem(key=key, content=content)]))

    save("color", "blue")
    items = dapr.get_configuration("in-memory", ["color", "absent"]).items
    assert list(items) == ["color"] and items["color"].value == "blue"
    changes: list[dict[str, str]] = []
    arrived = threading.Event()

    def handler(subscription_id: str, response: Any) -> None:
        changes.append({k: v.value for k, v in response.items.items()})
        arrived.set()

    subscription_id = dapr.subscribe_configuration("in-memory", ["color"], handler)
    assert subscription_id
    save("color", "green")
    assert arrived.wait(10)
    assert changes == [{"color": "green"}]
    assert dapr.unsubscribe_configuration("in-memory", subscription_id) is True
    assert dapr.unsubscribe_configuration("in-memory", subscription_id) is False


def test_lock(dapr: DaprClient) -> None:
    with dapr.try_lock("in-memory", "res", "me", 10) as lock:
        assert lock.success
        assert not dapr.try_lock("in-memory", "res", "you", 10).success
    assert dapr.try_lock("in-memory", "res", "you", 10).success  # released on exit
    assert dapr.unlock("in-memory", "res", "me").status.name == "lock_belongs_to_others"
    assert dapr.unlock("in-memory", "res", "you").status.name == "success"
    assert dapr.unlock("in-memory", "res", "you").status.name == "lock_does_not_exist"


def test_metadata(dapr: DaprClient) -> None:
    dapr.set_metadata("owner", "team-a")
    metadata = dapr.get_metadata()
    assert metadata.application_id == APP_ID
    assert metadata.extended_metadata["owner"] == "team-a"
    components = {(c.name, c.type) for c in metadata.registered_components}
    assert ("sqlite", "state.sqlite") in components and ("echo", "bindings.http") in components
    sqlite = next(c for c in metadata.registered_components if c.name == "sqlite"
                  and c.type == "state.sqlite")
    assert {"ETAG", "TRANSACTIONAL", "TTL", "QUERY_API"} <= set(sqlite.capabilities)


def test_invoke_method_over_http_passes_status_and_body(dapr: DaprClient) -> None:
    reply = dapr.invoke_method(APP_ID, "orders/1", data="hi", http_verb="PUT")
    assert json.loads(reply.data) == {"method": "PUT", "path": "/orders/1", "body": "hi"}
    with pytest.raises(Exception) as info:
        dapr.invoke_method(APP_ID, "status/404", data="", http_verb="GET")
    assert "404" in str(info.value)


def test_shutdown_stops_the_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    car = Sidecar(tmp_path).start()
    try:
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        with DaprClient() as client:
            client.shutdown()
        assert car.process is not None
        deadline = time.monotonic() + 15
        while car.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert car.process.returncode == 0
        assert "shutdown requested through the API" in car.logs()
    finally:
        car.stop()


def test_invoke_method_over_grpc(dapr_sidecar: Sidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_HTTP_PORT", str(dapr_sidecar.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(dapr_sidecar.dapr_grpc_port))
    monkeypatch.setenv("DAPR_API_METHOD_INVOCATION_PROTOCOL", "grpc")
    with DaprClient() as client:
        reply = client.invoke_method(APP_ID, "orders/2", data="hey", http_verb="POST",
                                     http_querystring=(("page", "3"),))
    assert json.loads(reply.data) == {"method": "POST", "path": "/orders/2?page=3",
                                      "body": "hey"}


def test_wait(dapr: DaprClient) -> None:
    dapr.wait(5)  # the SDK's readiness wait: a TCP connect to the gRPC port
