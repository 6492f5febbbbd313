"""Dapr's error model against a real ``pylotto run``, read the way Dapr apps read it: the
dapr 1.19 SDK's ``DaprGrpcError`` (``error_code()``, ``status_details()``) on the gRPC API, and
the HTTP body ``{"errorCode", "message", "details"}`` (through the SDK's ``DaprHttpError``) on
the HTTP API. Every expected code, reason and text is daprd's (dapr/dapr master)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError, DaprHttpError
from dapr.clients.grpc._request import TransactionalStateOperation
from dapr.proto.runtime.v1 import dapr_pb2_grpc, state_pb2
from dapr.serializers import DefaultJSONSerializer

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.servers import require

APP_ID = "errapp"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RESOURCE_INFO = "type.googleapis.com/google.rpc.ResourceInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
HELP = "type.googleapis.com/google.rpc.Help"


@pytest.fixture(scope="module")
def car(tmp_path_factory: pytest.TempPathFactory, echo_port: int) -> Iterator[Sidecar]:
    require("redis")
    require("memcached")
    workdir = tmp_path_factory.mktemp("daprerrors")
    secrets = workdir / "secrets.json"
    secrets.write_text(json.dumps({"db": "s3cret"}))
    sidecar = Sidecar(workdir, app={"app_id": APP_ID, "port": echo_port}, components={
        "state": {"sqlite": {"type": "sqlite", "metadata": {}},
                  "kv": {"type": "redis", "metadata": {"redisHost": "127.0.0.1:6379"}},
                  "cache": {"type": "memcached", "metadata": {"hosts": "127.0.0.1:11211"}}},
        "pubsub": {"bus": {"type": "in-memory", "metadata": {}}},
        "lock": {"locks": {"type": "in-memory", "metadata": {}}},
        "configuration": {"conf": {"type": "in-memory", "metadata": {}}},
        "secretstores": {"files": {"type": "local.file",
                                   "metadata": {"secretsFile": str(secrets)}}},
        "bindings": {"hook": {"type": "http",
                              "metadata": {"url": f"http://127.0.0.1:{echo_port}/hook"}}},
    })
    sidecar.start()
    yield sidecar
    sidecar.stop()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """A sidecar with no component at all (the NOT_CONFIGURED errors) and an app port
    nothing listens on (the invocation errors)."""
    sidecar = Sidecar(tmp_path_factory.mktemp("daprbare"),
                      app={"app_id": "bare", "port": free_port()}, components={})
    sidecar.start()
    yield sidecar
    sidecar.stop()


def _client(sidecar: Sidecar, monkeypatch: pytest.MonkeyPatch) -> DaprClient:
    monkeypatch.setenv("DAPR_HTTP_PORT", str(sidecar.dapr_http_port))
    monkeypatch.setenv("DAPR_GRPC_PORT", str(sidecar.dapr_grpc_port))
    monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")
    return DaprClient()


@pytest.fixture
def dapr(car: Sidecar, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaprClient]:
    with _client(car, monkeypatch) as client:
        yield client


@pytest.fixture
def stub(car: Sidecar) -> Iterator[dapr_pb2_grpc.DaprStub]:
    with grpc.insecure_channel(car.dapr_grpc_address) as channel:
        yield dapr_pb2_grpc.DaprStub(channel)


def grpc_error(call: Callable[[], object]) -> DaprGrpcError:
    """The DaprGrpcError ``call`` raises (an SDK method that passes grpc.RpcError on raw is
    wrapped as an app does to read the details)."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    err = info.value
    return err if isinstance(err, DaprGrpcError) else DaprGrpcError(err)


def info_of(err: DaprGrpcError) -> dict[str, Any]:
    details = err.status_details()
    assert details.error_info is not None, "no ErrorInfo in the status"
    info: dict[str, Any] = details.error_info
    assert info["domain"] == "dapr.io"
    return info


class Http:
    def __init__(self, sidecar: Sidecar) -> None:
        self.base = sidecar.dapr_http_url

    def __call__(self, method: str, path: str, body: object = None, *,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                raise AssertionError(f"{method} {path} answered {resp.status}, not an error")
        except urllib.error.HTTPError as err:
            raw = err.read()
            sdk = DaprHttpError(DefaultJSONSerializer(), raw, err.code)
            body_json: dict[str, Any] = json.loads(raw)
            assert sdk.error_code == body_json["errorCode"]
            if "message" in body_json:  # a bulk publish's failures have none
                assert sdk.message == body_json["message"]
            return err.code, body_json


@pytest.fixture
def http(car: Sidecar) -> Http:
    return Http(car)


# ---- state ---------------------------------------------------------------------------------


def test_state_store_not_found(dapr: DaprClient, http: Http) -> None:
    err = grpc_error(lambda: dapr.get_state("nope", "k"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "state store nope is not found"
    assert err.error_code() == "DAPR_STATE_NOT_FOUND"
    assert info_of(err).get("metadata", {}) == {}
    assert err.status_details().resource_info is None
    status, body = http("GET", "/v1.0/state/nope/k")
    assert status == 400
    assert body == {"errorCode": "ERR_STATE_STORE_NOT_FOUND",
                    "message": "state store nope is not found",
                    "details": [{"@type": ERROR_INFO, "reason": "DAPR_STATE_NOT_FOUND",
                                 "domain": "dapr.io", "metadata": {"appID": APP_ID}}]}


def test_state_not_configured(bare: Sidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    with _client(bare, monkeypatch) as dapr:
        err = grpc_error(lambda: dapr.save_state("any", "k", "v"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == "state store any is not configured"
    assert err.error_code() == "DAPR_STATE_NOT_CONFIGURED"
    status, body = Http(bare)("POST", "/v1.0/state/any", [{"key": "k", "value": 1}])
    assert status == 500 and body["errorCode"] == "ERR_STATE_STORE_NOT_CONFIGURED"
    assert body["message"] == "state store any is not configured"
    assert body["details"][0]["metadata"] == {"appID": "bare"}


def test_illegal_key(dapr: DaprClient, http: Http) -> None:
    message = "input key/keyPrefix 'key||' can't contain '||'"
    err = grpc_error(lambda: dapr.save_state("sqlite", "key||", "v"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == message
    assert err.error_code() == "DAPR_STATE_ILLEGAL_KEY"
    details = err.status_details()
    assert details.resource_info == {"@type": RESOURCE_INFO, "resource_type": "state",
                                     "resource_name": "sqlite"}
    assert details.bad_request == {"@type": BAD_REQUEST, "field_violations": [
        {"field": "key||", "description": message}]}
    status, body = http("GET", "/v1.0/state/sqlite/key||")
    assert status == 400
    assert body == {"errorCode": "ERR_MALFORMED_REQUEST", "message": message, "details": [
        {"@type": BAD_REQUEST, "field_violations": [{"field": "key||",
                                                     "description": message}]},
        {"@type": RESOURCE_INFO, "resource_type": "state", "resource_name": "sqlite",
         "owner": "", "description": ""},
        {"@type": ERROR_INFO, "reason": "DAPR_STATE_ILLEGAL_KEY", "domain": "dapr.io",
         "metadata": None},
    ]}


def test_etag_mismatch_and_invalid(dapr: DaprClient, http: Http) -> None:
    dapr.save_state("sqlite", "e1", "v1")
    stale = dapr.get_state("sqlite", "e1").etag
    dapr.save_state("sqlite", "e1", "v2", etag=stale)
    prefix = "failed saving state in state store sqlite: "
    err = grpc_error(lambda: dapr.save_state("sqlite", "e1", "v3", etag=stale))
    assert err.code() == grpc.StatusCode.ABORTED
    assert err.error_code() == "ERR_STATE_SAVE"
    assert err.details().startswith(prefix + "possible etag mismatch. error from state store: ")
    # sqlite compares etags as text (contrib's sqlite): any other text is a mismatch
    err = grpc_error(lambda: dapr.save_state("sqlite", "e1", "v3", etag="not-a-number"))
    assert err.code() == grpc.StatusCode.ABORTED
    # redis parses its etags as numbers: a non-number is an invalid etag
    key = f"e1-{uuid.uuid4().hex}"
    dapr.save_state("kv", key, "v1")
    err = grpc_error(lambda: dapr.save_state("kv", key, "v3", etag="not-a-number"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.error_code() == "ERR_STATE_SAVE"
    assert err.details().startswith("failed saving state in state store kv: invalid etag value: ")
    err = grpc_error(lambda: dapr.delete_state("sqlite", "e1", etag=stale))
    assert err.code() == grpc.StatusCode.ABORTED and err.error_code() == "ERR_STATE_DELETE"
    assert err.details().startswith("failed deleting state with key e1: possible etag mismatch")
    # HTTP: legacy errors, without details
    status, body = http("POST", "/v1.0/state/sqlite", [{"key": "e1", "value": 3, "etag": stale}])
    assert status == 409 and body["errorCode"] == "ERR_STATE_SAVE" and "details" not in body
    assert body["message"].startswith(prefix + "possible etag mismatch.")
    status, body = http("POST", "/v1.0/state/kv", [{"key": key, "value": 3, "etag": "x"}])
    assert status == 400 and body["errorCode"] == "ERR_STATE_SAVE"
    assert body["message"].startswith("failed saving state in state store kv: invalid etag value: ")
    status, body = http("DELETE", "/v1.0/state/sqlite/e1", headers={"If-Match": stale})
    assert status == 409 and body["errorCode"] == "ERR_STATE_DELETE"
    assert body["message"].startswith("failed deleting state with key e1: possible etag")


def test_empty_key(stub: dapr_pb2_grpc.DaprStub, http: Http) -> None:
    request = state_pb2.SaveStateRequest(store_name="sqlite")
    request.states.add(key="", value=b"v")
    err = grpc_error(lambda: stub.SaveState(request))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details(), err.error_code()) == ("state key cannot be empty", "ERR_STATE_SAVE")
    status, body = http("POST", "/v1.0/state/sqlite", [{"key": "", "value": 1}])
    assert (status, body) == (400, {"errorCode": "ERR_MALFORMED_REQUEST",
                                    "message": '"key" is a required field'})


def test_transactions_not_supported(dapr: DaprClient, http: Http) -> None:
    op = TransactionalStateOperation(key="t", data="v")
    err = grpc_error(lambda: dapr.execute_state_transaction("cache", [op]))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    assert err.details() == "state store cache doesn't support transactions"
    assert err.error_code() == "DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED"
    details = err.status_details()
    assert details.resource_info == {"@type": RESOURCE_INFO, "resource_type": "state",
                                     "resource_name": "cache"}
    assert details.help["links"][0]["url"].startswith("https://docs.dapr.io/")
    status, body = http("POST", "/v1.0/state/cache/transaction",
                        {"operations": [{"operation": "upsert",
                                         "request": {"key": "t", "value": 1}}]})
    assert status == 500 and body["errorCode"] == "ERR_STATE_STORE_NOT_SUPPORTED"
    assert [d["@type"] for d in body["details"]] == [HELP, RESOURCE_INFO, ERROR_INFO]


def test_transaction_operation_not_supported(stub: dapr_pb2_grpc.DaprStub, http: Http) -> None:
    request = state_pb2.ExecuteStateTransactionRequest(storeName="sqlite")
    request.operations.add(operationType="merge").request.key = "k"
    err = grpc_error(lambda: stub.ExecuteStateTransaction(request))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    assert err.details() == "operation type merge not supported"
    assert err.error_code() == "ERR_NOT_SUPPORTED_STATE_OPERATION"
    status, body = http("POST", "/v1.0/state/sqlite/transaction",
                        {"operations": [{"operation": "merge", "request": {"key": "k"}}]})
    assert (status, body) == (400, {"errorCode": "ERR_NOT_SUPPORTED_STATE_OPERATION",
                                    "message": "operation type merge not supported"})


def test_query_not_supported_and_failed(dapr: DaprClient, http: Http) -> None:
    err = grpc_error(lambda: dapr.query_state("kv", json.dumps({"filter": {}})))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "state store does not support querying"
    assert err.error_code() == "DAPR_STATE_QUERYING_NOT_SUPPORTED"
    err = grpc_error(lambda: dapr.query_state("sqlite", "{not json"))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.error_code() == "DAPR_STATE_QUERY_FAILED"
    assert err.details().startswith("state store sqlite query failed: ")
    assert err.status_details().resource_info["resource_name"] == "sqlite"
    status, body = http("POST", "/v1.0-alpha1/state/kv/query", {"filter": {}})
    assert status == 500 and body["errorCode"] == "ERR_STATE_STORE_NOT_SUPPORTED"


# ---- pub/sub -------------------------------------------------------------------------------


def test_pubsub_not_found(dapr: DaprClient, http: Http) -> None:
    err = grpc_error(lambda: dapr.publish_event("nobus", "t", "x"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details(), err.error_code()) == ("pubsub nobus is not found",
                                                 "DAPR_PUBSUB_NOT_FOUND")
    assert err.status_details().resource_info is None
    status, body = http("POST", "/v1.0/publish/nobus/t", {"a": 1})
    assert status == 404 and body["errorCode"] == "ERR_PUBSUB_NOT_FOUND"
    assert body["message"] == "pubsub nobus is not found"
    assert body["details"] == [{"@type": ERROR_INFO, "reason": "DAPR_PUBSUB_NOT_FOUND",
                                "domain": "dapr.io", "metadata": {}}]  # the request's


def test_pubsub_not_configured(bare: Sidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    with _client(bare, monkeypatch) as dapr:
        err = grpc_error(lambda: dapr.publish_event("bus", "t", "x"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (err.details(), err.error_code()) == ("pubsub bus is not configured",
                                                 "DAPR_PUBSUB_NOT_CONFIGURED")
    status, body = Http(bare)("POST", "/v1.0/publish/bus/t", {"a": 1})
    assert status == 400 and body["errorCode"] == "ERR_PUBSUB_NOT_CONFIGURED"


def test_pubsub_name_and_topic_empty(stub: dapr_pb2_grpc.DaprStub) -> None:
    from dapr.proto.runtime.v1 import pubsub_pb2

    err = grpc_error(lambda: stub.PublishEvent(pubsub_pb2.PublishEventRequest(topic="t")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details(), err.error_code()) == ("pubsub name is empty",
                                                 "DAPR_PUBSUB_NAME_EMPTY")
    err = grpc_error(lambda: stub.PublishEvent(pubsub_pb2.PublishEventRequest(
        pubsub_name="bus", metadata={"rawPayload": "true"})))
    assert (err.details(), err.error_code()) == ("topic is empty in pubsub bus",
                                                 "DAPR_PUBSUB_TOPIC_NAME_EMPTY")
    assert err.status_details().resource_info == {
        "@type": RESOURCE_INFO, "resource_type": "pubsub", "resource_name": "bus",
        "description": "topic is empty in pubsub bus"}
    assert info_of(err)["metadata"] == {"rawPayload": "true"}


def test_subscriber_stream_refusals(stub: dapr_pb2_grpc.DaprStub) -> None:
    from dapr.proto.runtime.v1 import pubsub_pb2

    def opened(pubsub: str, topic: str) -> DaprGrpcError:
        initial = pubsub_pb2.SubscribeTopicEventsRequestAlpha1(
            initial_request=pubsub_pb2.SubscribeTopicEventsRequestInitialAlpha1(
                pubsub_name=pubsub, topic=topic))
        stream = stub.SubscribeTopicEventsAlpha1(iter([initial]))
        return grpc_error(lambda: next(stream))

    err = opened("nobus", "t")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details(), err.error_code()) == ("pubsub nobus is not found",
                                                 "DAPR_PUBSUB_NOT_FOUND")
    err = opened("", "t")  # daprd: a plain error, which the SDK's subscriber retries
    assert (err.code(), err.details(), err.error_code()) == (
        grpc.StatusCode.UNKNOWN, "pubsubName is required", "UNKNOWN")
    err = opened("bus", "")
    assert (err.code(), err.details()) == (grpc.StatusCode.UNKNOWN, "topic is required")


def test_bulk_publish_duplicate_entry(stub: dapr_pb2_grpc.DaprStub, http: Http) -> None:
    from dapr.proto.runtime.v1 import pubsub_pb2

    request = pubsub_pb2.BulkPublishRequest(pubsub_name="bus", topic="orders")
    for _ in range(2):
        request.entries.add(entry_id="1", event=b"x", content_type="text/plain")
    err = grpc_error(lambda: stub.BulkPublishEvent(request))
    message = ("error marshaling events to bytes for topic orders pubsub bus. error: "
               "entryId is duplicated or not present for entry")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details(), err.error_code()) == (message, "DAPR_PUBSUB_MARSHAL_EVENTS")
    assert info_of(err)["metadata"] == {
        "appID": APP_ID, "error": "entryId is duplicated or not present for entry"}
    status, body = http("POST", "/v1.0-alpha1/publish/bulk/bus/orders",
                        [{"entryId": "1", "event": "a", "contentType": "text/plain"},
                         {"entryId": "1", "event": "b", "contentType": "text/plain"}])
    assert (status, body["errorCode"], body["message"]) == (400, "ERR_PUBSUB_EVENTS_SER",
                                                            message)


@pytest.fixture(scope="module")
def nats_car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    """A JetStream pub/sub: NATS refuses a message over its max_payload (1 MiB)."""
    require("nats")
    sidecar = Sidecar(tmp_path_factory.mktemp("daprnats"), app={"app_id": "natsapp"},
                      components={"pubsub": {"js": {"type": "jetstream", "metadata": {
                          "natsURL": "nats://127.0.0.1:4222",
                          "streamName": f"pylotto-errors-{free_port()}"}}}})
    sidecar.start()
    yield sidecar
    sidecar.stop()


def test_publish_and_bulk_publish_failures(nats_car: Sidecar,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    huge = "x" * (2 * 1024 * 1024)
    prefix = "error when publishing to topic orders in pubsub js: "
    with _client(nats_car, monkeypatch) as dapr:
        err = grpc_error(lambda: dapr.publish_event("js", "orders", huge))
        assert err.code() == grpc.StatusCode.INTERNAL
        assert err.error_code() == "DAPR_PUBSUB_PUBLISH_MESSAGE"
        assert err.details().startswith(prefix)
        assert err.status_details().resource_info["resource_name"] == "js"
        assert set(info_of(err)["metadata"]) == {"topic", "error"}
        # gRPC: a partial failure is the publish error of the first refused entry
        err = grpc_error(lambda: dapr.publish_events("js", "orders", ["small", huge],
                                                     data_content_type="text/plain"))
        assert err.code() == grpc.StatusCode.INTERNAL
        assert err.error_code() == "DAPR_PUBSUB_PUBLISH_MESSAGE"
        assert err.details().startswith(prefix)
    http = Http(nats_car)
    status, body = http("POST", "/v1.0/publish/js/orders", {"blob": huge})
    assert status == 500 and body["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
    assert body["message"].startswith(prefix)
    # HTTP: the failed entries, with daprd's errorCode
    status, body = http("POST", "/v1.0-alpha1/publish/bulk/js/orders", [
        {"entryId": "1", "event": "small", "contentType": "text/plain"},
        {"entryId": "2", "event": huge, "contentType": "text/plain"}])
    assert status == 500 and body["errorCode"] == "ERR_PUBSUB_PUBLISH_MESSAGE"
    assert [e["entryId"] for e in body["failedEntries"]] == ["2"]
    # as daprd: the same JSON in metadata.responseData, the publish error in metadata.error
    request = urllib.request.Request(
        f"{nats_car.dapr_http_url}/v1.0/publish/bulk/js/orders", method="POST",
        data=json.dumps([{"entryId": "a", "event": huge, "contentType": "text/plain"},
                         {"entryId": "b", "event": "small", "contentType": "text/plain"}]
                        ).encode())
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    raw = info.value.read()
    headers = info.value.headers
    assert info.value.code == 500 and headers["Content-Type"].startswith("application/json")
    assert headers["metadata.responseData"] == raw.decode()
    failed = json.loads(raw)["failedEntries"]
    assert [e["entryId"] for e in failed] == ["a"] and failed[0]["error"]
    assert headers["metadata.error"] == (
        f"api error: code = Internal desc = {prefix}{failed[0]['error']}")


# ---- bindings, secrets, configuration, lock, invoke ---------------------------------------


def test_binding_not_found(dapr: DaprClient, http: Http) -> None:
    err = grpc_error(lambda: dapr.invoke_binding("nobinding", "create", "x"))
    message = "error invoking output binding nobinding: couldn't find output binding nobinding"
    assert err.code() == grpc.StatusCode.INTERNAL
    assert (err.details(), err.error_code()) == (message, "ERR_INVOKE_OUTPUT_BINDING")
    status, body = http("POST", "/v1.0/bindings/nobinding", {"operation": "create"})
    assert (status, body) == (500, {"errorCode": "ERR_INVOKE_OUTPUT_BINDING",
                                    "message": message})


def test_secret_errors(dapr: DaprClient, http: Http) -> None:
    err = grpc_error(lambda: dapr.get_secret("nostore", "db"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "failed finding secret store with key nostore"
    assert err.error_code() == "UNKNOWN"  # daprd's legacy secret errors carry no details
    status, body = http("GET", "/v1.0/secrets/nostore/db")
    assert (status, body) == (401, {"errorCode": "ERR_SECRET_STORE_NOT_FOUND",
                                    "message": "failed finding secret store with key nostore"})
    err = grpc_error(lambda: dapr.get_secret("files", "absent"))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details().startswith(
        "failed getting secret with key absent from secret store files: ")
    status, body = http("GET", "/v1.0/secrets/files/absent")
    assert status == 500 and body["errorCode"] == "ERR_SECRET_GET"


def test_configuration_errors(dapr: DaprClient, http: Http) -> None:
    err = grpc_error(lambda: dapr.get_configuration("noconf", ["a"]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details(), err.error_code()) == ("configuration store noconf not found",
                                                 "ERR_CONFIGURATION_STORE_NOT_FOUND")
    status, body = http("GET", "/v1.0/configuration/noconf?key=a")
    assert (status, body) == (400, {"errorCode": "ERR_CONFIGURATION_STORE_NOT_FOUND",
                                    "message": "configuration store noconf not found"})


def test_configuration_subscribe_to_an_unknown_store(stub: dapr_pb2_grpc.DaprStub) -> None:
    from dapr.proto.runtime.v1 import configuration_pb2

    stream = stub.SubscribeConfiguration(configuration_pb2.SubscribeConfigurationRequest(
        store_name="noconf", keys=["a"]))
    err = grpc_error(lambda: next(stream))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.details(), err.error_code()) == ("configuration store noconf not found",
                                                 "ERR_CONFIGURATION_STORE_NOT_FOUND")


def test_configuration_and_lock_not_configured(bare: Sidecar,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with _client(bare, monkeypatch) as dapr:
        err = grpc_error(lambda: dapr.get_configuration("conf", ["a"]))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.details() == "configuration stores not configured"
        assert err.error_code() == "ERR_CONFIGURATION_STORE_NOT_CONFIGURED"
        err = grpc_error(lambda: dapr.try_lock("locks", "r", "me", 10))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (err.details(), err.error_code()) == ("lock store is not configured", "UNKNOWN")
    status, body = Http(bare)("POST", "/v1.0-alpha1/lock/locks",
                              {"resourceId": "r", "lockOwner": "me", "expiryInSeconds": 10})
    assert (status, body) == (500, {"errorCode": "ERR_LOCK_STORE_NOT_CONFIGURED",
                                    "message": "lock store is not configured"})


def test_lock_errors(dapr: DaprClient, stub: dapr_pb2_grpc.DaprStub, http: Http) -> None:
    from dapr.proto.runtime.v1 import lock_pb2

    err = grpc_error(lambda: dapr.try_lock("nolocks", "r", "me", 10))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "lock store nolocks not found"
    status, body = http("POST", "/v1.0-alpha1/lock/nolocks",
                        {"resourceId": "r", "lockOwner": "me", "expiryInSeconds": 10})
    assert (status, body) == (400, {"errorCode": "ERR_LOCK_STORE_NOT_FOUND",
                                    "message": "lock store nolocks not found"})
    err = grpc_error(lambda: stub.TryLockAlpha1(lock_pb2.TryLockRequest(
        store_name="locks", resource_id="r", lock_owner="", expiry_in_seconds=10)))
    assert err.details() == "LockOwner is empty in lock store locks"
    status, body = http("POST", "/v1.0-alpha1/lock/locks",
                        {"resourceId": "", "lockOwner": "me", "expiryInSeconds": 10})
    assert (status, body) == (400, {"errorCode": "ERR_MALFORMED_REQUEST",
                                    "message": "ResourceId is empty in lock store locks"})
    status, body = http("POST", "/v1.0-alpha1/lock/locks",
                        {"resourceId": "r", "lockOwner": "me", "expiryInSeconds": 0})
    assert body["message"] == "ExpiryInSeconds is not positive in lock store locks"
    err = grpc_error(lambda: stub.TryLockAlpha1(lock_pb2.TryLockRequest(
        store_name="locks", resource_id="a||b", lock_owner="me", expiry_in_seconds=10)))
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "failed to try acquiring lock: input key/keyPrefix 'a||b' can't " \
                            "contain '||'"


def test_invoke_an_app_that_does_not_answer(bare: Sidecar,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = "failed to invoke, id: bare, err: "
    # the SDK's default path: HTTP
    with _client(bare, monkeypatch) as dapr, pytest.raises(DaprHttpError) as info:
        dapr.invoke_method("bare", "orders", data=b"{}", http_verb="POST")
    assert info.value.status_code == 500 and info.value.error_code == "ERR_DIRECT_INVOKE"
    assert (info.value.message or "").startswith(prefix)
    from dapr.proto.common.v1 import common_pb2
    from dapr.proto.runtime.v1 import invoke_pb2

    with grpc.insecure_channel(bare.dapr_grpc_address) as channel:
        request = invoke_pb2.InvokeServiceRequest(id="bare", message=common_pb2.InvokeRequest(
            method="orders", http_extension=common_pb2.HTTPExtension(verb=2)))
        err = grpc_error(lambda: dapr_pb2_grpc.DaprStub(channel).InvokeService(request))
    assert err.code() == grpc.StatusCode.INTERNAL and err.details().startswith(prefix)
    assert err.error_code() == "UNKNOWN"  # ErrDirectInvoke is a legacy error: no details


def _invoke_errors(sidecar: Sidecar, app_id: str,
                   monkeypatch: pytest.MonkeyPatch) -> tuple[DaprHttpError, DaprGrpcError]:
    """Invoking ``app_id`` through ``sidecar``: the SDK's HTTP error, then the gRPC one."""
    from dapr.proto.common.v1 import common_pb2
    from dapr.proto.runtime.v1 import invoke_pb2

    with _client(sidecar, monkeypatch) as dapr, pytest.raises(DaprHttpError) as info:
        dapr.invoke_method(app_id, "orders", data=b"{}", http_verb="POST")
    with grpc.insecure_channel(sidecar.dapr_grpc_address) as channel:
        request = invoke_pb2.InvokeServiceRequest(id=app_id, message=common_pb2.InvokeRequest(
            method="orders", http_extension=common_pb2.HTTPExtension(verb=2)))
        err = grpc_error(lambda: dapr_pb2_grpc.DaprStub(channel).InvokeService(request))
    return info.value, err


def test_invoke_an_app_id_with_no_name_resolution(bare: Sidecar,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # daprd's directMessaging.getRemoteApp without a resolver, wrapped in ErrDirectInvoke
    text = "failed to invoke, id: other, err: name resolver not initialized"
    http_err, grpc_err = _invoke_errors(bare, "other", monkeypatch)
    assert (http_err.status_code, http_err.error_code, http_err.message) == (
        500, "ERR_DIRECT_INVOKE", text)
    assert (grpc_err.code(), grpc_err.details(), grpc_err.error_code()) == (
        grpc.StatusCode.INTERNAL, text, "UNKNOWN")


def test_invoke_an_app_id_name_resolution_does_not_find(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sidecar = Sidecar(tmp_path, app={"app_id": "front"}, components={})
    sidecar.extra_config = {"name_resolution": {"type": "static", "metadata": {
        "apps": {"billing": [f"127.0.0.1:{free_port()}"]}}}}
    sidecar.start()
    try:
        # daprd with mDNS (its self-hosted resolver) for an id nobody announces
        text = "failed to invoke, id: nobody, err: couldn't find service: nobody"
        http_err, grpc_err = _invoke_errors(sidecar, "nobody", monkeypatch)
        assert (http_err.status_code, http_err.error_code, http_err.message) == (
            500, "ERR_DIRECT_INVOKE", text)
        assert (grpc_err.code(), grpc_err.details()) == (grpc.StatusCode.INTERNAL, text)
    finally:
        sidecar.stop()


def test_malformed_http_body(http: Http) -> None:
    status, body = http("POST", "/v1.0/state/sqlite/bulk", None)
    assert status == 400 and body["errorCode"] == "ERR_MALFORMED_REQUEST"
