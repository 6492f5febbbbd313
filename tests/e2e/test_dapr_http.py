"""Dapr's HTTP API v1.0 against a real ``pylotto run``, request by request as curl would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.sidecar import Sidecar

APP_ID = "httpapp"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def car(tmp_path_factory: pytest.TempPathFactory, echo_port: int) -> Iterator[Sidecar]:
    sidecar = Sidecar(tmp_path_factory.mktemp("daprhttp"), app={"app_id": APP_ID,
                                                                "port": echo_port})
    sidecar.start()
    yield sidecar
    sidecar.stop()


@pytest.fixture
def http(car: Sidecar) -> Any:
    def call(method: str, path: str, body: object = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(f"{car.dapr_http_url}{path}", data=data,
                                         method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return Reply(resp.status, dict(resp.headers), resp.read())
        except urllib.error.HTTPError as err:
            return Reply(err.code, dict(err.headers), err.read())

    return call


def test_health_endpoints(http: Any) -> None:
    assert http("GET", "/v1.0/healthz").status == 204
    assert http("GET", "/v1.0/healthz/outbound").status == 204


def test_state_crud_etags_and_errors(http: Any) -> None:
    assert http("POST", "/v1.0/state/sqlite", [{"key": "h1", "value": {"n": 1}},
                                               {"key": "h2", "value": "text"}]).status == 204
    got = http("GET", "/v1.0/state/sqlite/h1")
    assert got.status == 200 and got.json() == {"n": 1} and got.headers["ETag"]
    assert http("GET", "/v1.0/state/sqlite/h2").body == b'"text"'
    assert http("GET", "/v1.0/state/sqlite/absent").status == 204
    stale = got.headers["ETag"]
    assert http("POST", "/v1.0/state/sqlite",
                [{"key": "h1", "value": 2, "etag": stale}]).status == 204
    conflict = http("POST", "/v1.0/state/sqlite", [{"key": "h1", "value": 3, "etag": stale}])
    assert conflict.status == 409
    assert conflict.json()["errorCode"] == "ERR_STATE_SAVE"
    assert http("POST", "/v1.0/state/sqlite",
                [{"key": "h1", "value": 3, "etag": "x"}]).status == 409  # sqlite: text
    assert http("DELETE", "/v1.0/state/sqlite/h1", headers={"If-Match": stale}).status == 409
    assert http("DELETE", "/v1.0/state/sqlite/h1").status == 204
    assert http("GET", "/v1.0/state/sqlite/h1").status == 204
    missing = http("GET", "/v1.0/state/nope/k")
    assert missing.status == 400 and "nope" in missing.json()["message"]
    bad = http("POST", "/v1.0/state/sqlite", raw=b"{not json")
    assert bad.status == 400 and bad.json()["errorCode"] == "ERR_MALFORMED_REQUEST"
    first = {"key": "fw", "value": 1, "options": {"concurrency": "first-write"}}
    assert http("POST", "/v1.0/state/sqlite", [first]).status == 204
    assert http("POST", "/v1.0/state/sqlite", [first]).status == 409


def test_bulk_get_transaction_and_query(http: Any) -> None:
    http("POST", "/v1.0/state/in-memory", [{"key": f"b{n}", "value": {"n": n}}
                                           for n in range(4)])
    bulk = http("POST", "/v1.0/state/in-memory/bulk", {"keys": ["b1", "b3", "none"]}).json()
    assert [(i["key"], i.get("data")) for i in bulk] == [("b1", {"n": 1}), ("b3", {"n": 3}),
                                                         ("none", None)]
    assert all(i.get("etag") for i in bulk[:2])
    assert http("POST", "/v1.0/state/in-memory/transaction", {"operations": [
        {"operation": "upsert", "request": {"key": "b9", "value": {"n": 9}}},
        {"operation": "delete", "request": {"key": "b0"}},
    ]}).status == 204
    assert http("GET", "/v1.0/state/in-memory/b0").status == 204
    query = {"filter": {"GTE": {"n": 3}}, "sort": [{"key": "n", "order": "DESC"}]}
    result = http("POST", "/v1.0-alpha1/state/in-memory/query", query).json()
    assert [r["key"] for r in result["results"]] == ["b9", "b3"]
    assert result["results"][0]["data"] == {"n": 9} and result["token"] == ""


def test_publish_and_bulk_publish(http: Any, car: Sidecar) -> None:
    from pylotto.client import Client

    with Client(car.grpc_address) as client, \
            client.subscribe("in-memory", "http-topic") as subscription:
        events = iter(subscription)
        published = http("POST", "/v1.0/publish/in-memory/http-topic", raw=b'{"a": 1}',
                         headers={"Content-Type": "application/json"})
        assert published.status == 204
        event = next(events)
        assert event.json() == {"a": 1} and event.data_content_type == "application/json"
        subscription.ack(event)
        bulk = http("POST", "/v1.0-alpha1/publish/bulk/in-memory/http-topic", [
            {"entryId": "1", "event": "plain", "contentType": "text/plain"},
            {"entryId": "2", "event": {"b": 2}, "contentType": "application/json"},
        ])
        assert bulk.status == 204
        received = []
        for _ in range(2):
            event = next(events)
            received.append(event.data)
            subscription.ack(event)
        assert sorted(received)[0] == b"plain" and json.loads(sorted(received)[1]) == {"b": 2}
    duplicate = http("POST", "/v1.0/publish/bulk/in-memory/t", [
        {"entryId": "1", "event": "x", "contentType": "text/plain"},
        {"entryId": "1", "event": "y", "contentType": "text/plain"}])
    assert duplicate.status == 400
    assert http("POST", "/v1.0/publish/nope/t", raw=b"x").status == 404  # as daprd


def test_invoke_passes_status_headers_and_body(http: Any) -> None:
    ok = http("POST", f"/v1.0/invoke/{APP_ID}/method/orders/7?x=1", raw=b"hello",
              headers={"Content-Type": "text/plain"})
    assert ok.status == 200 and ok.headers["X-Echo"] == "yes"
    assert ok.json() == {"method": "POST", "path": "/orders/7?x=1", "body": "hello"}
    assert http("GET", f"/v1.0/invoke/{APP_ID}/method/status/418").status == 418
    other = http("GET", "/v1.0/invoke/someone-else/method/x")  # no name resolution: daprd's
    assert other.status == 500 and other.json()["errorCode"] == "ERR_DIRECT_INVOKE"


def test_secrets_lock_configuration_and_metadata(http: Any, car: Sidecar) -> None:
    assert http("GET", "/v1.0/secrets/local.env/PATH").json().keys() == {"PATH"}
    assert "PATH" in http("GET", "/v1.0/secrets/local.env/bulk").json()
    assert http("POST", "/v1.0-alpha1/lock/in-memory", {
        "resourceId": "r", "lockOwner": "me", "expiryInSeconds": 10}).json() == {"success": True}
    assert http("POST", "/v1.0-alpha1/lock/in-memory", {
        "resourceId": "r", "lockOwner": "you", "expiryInSeconds": 10}).json() == {
            "success": False}
    assert http("POST", "/v1.0-alpha1/unlock/in-memory",
                {"resourceId": "r", "lockOwner": "you"}).json() == {"status": 2}
    assert http("POST", "/v1.0-alpha1/unlock/in-memory",
                {"resourceId": "r", "lockOwner": "me"}).json() == {"status": 0}
    from pylotto.proto.layotto import runtime_pb2

    car.stub().SaveConfiguration(runtime_pb2.SaveConfigurationRequest(
        store_name="in-memory", app_id=APP_ID,
        items=[runtime_pb2.ConfigurationItem(key="color", content="red")]))
    config = http("GET", "/v1.0/configuration/in-memory?key=color&key=none").json()
    assert config == {"color": {"value": "red"}}  # Dapr leaves empty fields out
    assert http("PUT", "/v1.0/metadata/team", raw=b"payments").status == 204
    metadata = http("GET", "/v1.0/metadata").json()
    assert metadata["id"] == APP_ID and metadata["extended"]["team"] == "payments"
    assert {"name": "in-memory", "type": "lock.in-memory", "version": "v1",
            "capabilities": []} in metadata["components"]
