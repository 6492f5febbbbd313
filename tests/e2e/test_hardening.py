"""Hostile input gets a precise error, never a traceback (issue 17): one test per finding,
against a real ``pylotto run`` on the embedded components, over the Layotto gRPC, Dapr gRPC and
Dapr HTTP APIs."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import actors_pb2, dapr_pb2_grpc, pubsub_pb2, state_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.e2e.sidecar import Sidecar

DEEP = b"[" * 100_000
HUGE_TTLS = ("253402300799", "9999999999999999999", "9" * 400, "2147483648")
STORES = ("in-memory", "sqlite")


@dataclass
class Reply:
    status: int
    body: bytes

    @property
    def error_code(self) -> str:
        try:
            return str(json.loads(self.body).get("errorCode", ""))
        except (ValueError, AttributeError):
            return ""


@pytest.fixture(scope="module")
def car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    sidecar = Sidecar(tmp_path_factory.mktemp("hardening"), extra_args=["--log-level", "info"])
    sidecar.start()
    yield sidecar
    sidecar.stop()


@pytest.fixture(scope="module")
def layotto(car: Sidecar) -> runtime_pb2_grpc.RuntimeStub:
    return car.stub()


@pytest.fixture(scope="module")
def dapr(car: Sidecar) -> Iterator[dapr_pb2_grpc.DaprStub]:
    channel = grpc.insecure_channel(car.dapr_grpc_address)
    yield dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
    channel.close()


def http(car: Sidecar, method: str, path: str, body: bytes | None = None,
         content_type: str = "application/json") -> Reply:
    request = urllib.request.Request(f"{car.dapr_http_url}{path}", data=body, method=method,
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return Reply(resp.status, resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.read())


def code_of(call: Any, *args: Any, **kwargs: Any) -> grpc.StatusCode:
    try:
        call(*args, timeout=10, **kwargs)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


# ---- 1. a TTL no store can hold ----------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_a_huge_ttl_is_refused_and_poisons_no_key(
        layotto: runtime_pb2_grpc.RuntimeStub, dapr: dapr_pb2_grpc.DaprStub, car: Sidecar,
        store: str) -> None:
    for ttl in HUGE_TTLS:
        item = runtime_pb2.StateItem(key="poison", value=b"v", metadata={"ttlInSeconds": ttl})
        assert code_of(layotto.SaveState, runtime_pb2.SaveStateRequest(
            store_name=store, states=[item])) is grpc.StatusCode.INVALID_ARGUMENT
        dapr_item = common_pb2.StateItem(key="poison", value=b"v",
                                                   metadata={"ttlInSeconds": ttl})
        assert code_of(dapr.SaveState, state_pb2.SaveStateRequest(
            store_name=store, states=[dapr_item])) is grpc.StatusCode.INVALID_ARGUMENT
        reply = http(car, "POST", f"/v1.0/state/{store}", json.dumps(
            [{"key": "poison", "value": 1, "metadata": {"ttlInSeconds": ttl}}]).encode())
        assert (reply.status, reply.error_code) == (400, "ERR_MALFORMED_REQUEST")
    # the longest TTL taken is kept and read back, with its expiry
    longest = runtime_pb2.StateItem(key="poison", value=b"kept",
                                    metadata={"ttlInSeconds": "2147483647"})
    layotto.SaveState(runtime_pb2.SaveStateRequest(store_name=store, states=[longest]),
                      timeout=10)
    got = layotto.GetState(runtime_pb2.GetStateRequest(store_name=store, key="poison"),
                           timeout=10)
    assert got.data == b"kept" and "ttlExpireTime" in got.metadata
    bulk = layotto.GetBulkState(runtime_pb2.GetBulkStateRequest(store_name=store,
                                                                keys=["poison"]), timeout=10)
    assert [i.data for i in bulk.items] == [b"kept"]


def test_a_huge_publish_ttl_is_refused(layotto: runtime_pb2_grpc.RuntimeStub,
                                       dapr: dapr_pb2_grpc.DaprStub, car: Sidecar) -> None:
    for ttl in ("999999999999", *HUGE_TTLS):
        assert code_of(layotto.PublishEvent, runtime_pb2.PublishEventRequest(
            pubsub_name="in-memory", topic="t", data=b"{}", data_content_type="application/json",
            metadata={"ttlInSeconds": ttl})) is grpc.StatusCode.INVALID_ARGUMENT
        assert code_of(dapr.PublishEvent, pubsub_pb2.PublishEventRequest(
            pubsub_name="in-memory", topic="t", data=b"{}", data_content_type="application/json",
            metadata={"ttlInSeconds": ttl})) is grpc.StatusCode.INVALID_ARGUMENT
        reply = http(car, "POST", f"/v1.0/publish/in-memory/t?metadata.ttlInSeconds={ttl}",
                     b"{}")
        assert (reply.status, reply.error_code) == (400, "ERR_MALFORMED_REQUEST")


# ---- 2. JSON nested 100,000 deep ---------------------------------------------------------------


def test_deep_json_over_grpc_is_invalid_argument(layotto: runtime_pb2_grpc.RuntimeStub,
                                                 dapr: dapr_pb2_grpc.DaprStub) -> None:
    for content_type in ("application/cloudevents+json", "application/json"):
        assert code_of(dapr.PublishEvent, pubsub_pb2.PublishEventRequest(
            pubsub_name="in-memory", topic="t", data=DEEP, data_content_type=content_type,
        )) is grpc.StatusCode.INVALID_ARGUMENT
        assert code_of(layotto.PublishEvent, runtime_pb2.PublishEventRequest(
            pubsub_name="in-memory", topic="t", data=DEEP, data_content_type=content_type,
        )) is grpc.StatusCode.INVALID_ARGUMENT
    for store in STORES:  # daprd's gRPC answer to a query it cannot parse: INTERNAL
        with pytest.raises(grpc.RpcError) as refused:
            dapr.QueryStateAlpha1(state_pb2.QueryStateRequest(
                store_name=store, query=DEEP.decode()), timeout=10)
        assert refused.value.code() is grpc.StatusCode.INTERNAL
        assert refused.value.details().startswith(  # type: ignore[attr-defined]
            f"state store {store} query failed: failed to parse JSON query body: ")
    # a deep value is stored as bytes: a query skips it, reads return it as it is
    for store in STORES:
        dapr.SaveState(state_pb2.SaveStateRequest(store_name=store, states=[
            common_pb2.StateItem(key="deep", value=DEEP)]), timeout=10)
        dapr.QueryStateAlpha1(state_pb2.QueryStateRequest(
            store_name=store, query='{"filter": {"EQ": {"a": 1}}}'), timeout=10)
        got = dapr.GetState(state_pb2.GetStateRequest(store_name=store, key="deep"), timeout=10)
        assert got.data == DEEP


HTTP_BODY_ROUTES = (
    ("POST", "/v1.0/state/in-memory"),
    ("POST", "/v1.0/state/in-memory/bulk"),
    ("POST", "/v1.0/state/in-memory/transaction"),
    ("POST", "/v1.0-alpha1/state/in-memory/query"),
    ("POST", "/v1.0/publish/bulk/in-memory/t"),
    ("POST", "/v1.0-alpha1/lock/in-memory"),
    ("POST", "/v1.0-alpha1/unlock/in-memory"),
    ("POST", "/v1.0/bindings/any"),
)


@pytest.mark.parametrize(("method", "path"), HTTP_BODY_ROUTES)
def test_deep_json_over_http_is_malformed_request(car: Sidecar, method: str, path: str) -> None:
    reply = http(car, method, path, DEEP)
    assert (reply.status, reply.error_code) == (400, "ERR_MALFORMED_REQUEST")
    assert b"deeper than 100" in reply.body


def test_deep_json_publish_over_http_is_malformed_request(car: Sidecar) -> None:
    for content_type in ("application/json", "application/cloudevents+json"):
        reply = http(car, "POST", "/v1.0/publish/in-memory/t", DEEP, content_type)
        assert (reply.status, reply.error_code) == (400, "ERR_MALFORMED_REQUEST")
    # a deep value written over gRPC reads back over HTTP (as text: it is not JSON we decode)
    reply = http(car, "POST", "/v1.0/state/sqlite/bulk", b'{"keys": ["deep"]}')
    assert reply.status == 200


# ---- 3. bodies that are not UTF-8, charsets that do not exist, lone surrogates -----------------


@pytest.mark.parametrize(("method", "path"), HTTP_BODY_ROUTES)
def test_a_body_that_is_not_utf8_is_malformed_request(car: Sidecar, method: str,
                                                      path: str) -> None:
    reply = http(car, method, path, b"\xff\xfe\xfd")
    assert (reply.status, reply.error_code) == (400, "ERR_MALFORMED_REQUEST")
    assert b"not UTF-8" in reply.body
    reply = http(car, method, path, b'[{"key": "\\ud800", "value": 1}]')
    assert (reply.status, reply.error_code) == (400, "ERR_MALFORMED_REQUEST")


def test_an_unknown_charset_never_fails(car: Sidecar) -> None:
    evil = "text/plain; charset=evil"
    for method, path in HTTP_BODY_ROUTES:
        assert http(car, method, path, b"[]", evil).status < 500, path
    assert http(car, "PUT", "/v1.0/metadata/k", b"v", evil).status == 204
    assert http(car, "POST", "/v1.0/publish/in-memory/t", b"hi", evil).status == 204
    reply = http(car, "PUT", "/v1.0/metadata/k", b"\xff", evil)
    assert (reply.status, reply.error_code) == (400, "ERR_MALFORMED_REQUEST")
    request = urllib.request.Request(f"{car.actuator_url}/actuator/loggers", data=b"{}",
                                     method="POST", headers={"Content-Type": evil})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400


def test_a_lone_surrogate_is_refused(layotto: runtime_pb2_grpc.RuntimeStub,
                                     dapr: dapr_pb2_grpc.DaprStub, car: Sidecar) -> None:
    data = b'{"a": "\\ud800"}'
    for content_type in ("application/json", "application/cloudevents+json"):
        assert code_of(dapr.PublishEvent, pubsub_pb2.PublishEventRequest(
            pubsub_name="in-memory", topic="t", data=data, data_content_type=content_type,
        )) is grpc.StatusCode.INVALID_ARGUMENT
        assert code_of(layotto.PublishEvent, runtime_pb2.PublishEventRequest(
            pubsub_name="in-memory", topic="t", data=data, data_content_type=content_type,
        )) is grpc.StatusCode.INVALID_ARGUMENT
        reply = http(car, "POST", "/v1.0/publish/in-memory/t", data, content_type)
        assert (reply.status, reply.error_code) == (400, "ERR_MALFORMED_REQUEST")
    # a pair of surrogate escapes is one character, and fine
    assert code_of(dapr.PublishEvent, pubsub_pb2.PublishEventRequest(
        pubsub_name="in-memory", topic="t", data=b'{"a": "\\ud83d\\ude00"}',
        data_content_type="application/json")) is grpc.StatusCode.OK


# ---- 5. undecodable requests, unimplemented methods, malformed HTTP: answered, quiet -------------


def test_undecodable_unimplemented_and_malformed_calls_are_answered_and_quiet(
        car: Sidecar) -> None:
    before = car.log_path.stat().st_size
    channel = grpc.insecure_channel(car.dapr_grpc_address)
    layotto_channel = grpc.insecure_channel(car.grpc_address)
    try:
        for _ in range(100):
            for target, method in (
                    (channel, "/dapr.proto.runtime.v1.Dapr/GetState"),
                    (layotto_channel, "/spec.proto.runtime.v1.Runtime/SaveState"),
                    (layotto_channel, "/spec.proto.runtime.v1.Runtime/PutFile")):
                if method.endswith("PutFile"):
                    code = code_of(target.stream_unary(method), iter([b"\xff\xff\xff"]))
                else:
                    code = code_of(target.unary_unary(method), b"\xff\xff\xff")
                assert code is grpc.StatusCode.INVALID_ARGUMENT, method
            # the embedded default runs actors: a bad actor type is refused at once
            assert code_of(channel.unary_unary("/dapr.proto.runtime.v1.Dapr/InvokeActor"),
                           BAD_ACTOR_TYPE) is grpc.StatusCode.INVALID_ARGUMENT
            assert _raw_http(car, b"GET /v1.0/healthz HTTP/9.9\r\n\r\n") == 400
    finally:
        channel.close()
        layotto_channel.close()
    time.sleep(0.3)
    with car.log_path.open("rb") as log:
        log.seek(before)
        lines = log.read().decode(errors="replace").splitlines()
    assert not [line for line in lines if "Traceback" in line or "level=error" in line], lines
    assert len(lines) <= 3, lines  # 400 bad calls: one warning per kind


BAD_ACTOR_TYPE = actors_pb2.InvokeActorRequest(actor_type="a/b", actor_id="1",
                                              method="m").SerializeToString()


def _raw_http(car: Sidecar, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", car.dapr_http_port), timeout=5) as sock:
        sock.sendall(data)
        head = sock.recv(64)
    return int(head.split(b" ")[1])


# ---- 6. grpc.health.v1.Health/Watch ------------------------------------------------------------


def test_health_watch_streams_serving_then_the_change(tmp_path: Any) -> None:
    car = Sidecar(tmp_path).start()
    try:
        channel = grpc.insecure_channel(car.grpc_address)
        health = health_pb2_grpc.HealthStub(channel)
        unknown = health.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"),
                               timeout=10)
        assert next(unknown).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        unknown.cancel()
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=20)
        seen = [next(watch).status]
        assert seen == [health_pb2.HealthCheckResponse.SERVING]
        later: list[int] = []
        reader = threading.Thread(target=lambda: later.extend(
            _statuses_until_end(watch)), daemon=True)
        reader.start()
        assert car.process is not None
        car.process.send_signal(signal.SIGTERM)  # graceful shutdown: NOT_SERVING first
        reader.join(15)
        assert later and later[0] == health_pb2.HealthCheckResponse.NOT_SERVING
        channel.close()
    finally:
        car.stop()


def _statuses_until_end(watch: Any) -> list[int]:
    out = []
    try:
        for answer in watch:
            out.append(answer.status)
    except grpc.RpcError:
        pass
    return out


# ---- 7. actor routes and the workflow management API of the embedded default ------------------

ACTOR_AND_WORKFLOW_REFUSALS = [
    # (verb, path, body, status, errorCode, message start): daprd's pkg/api/http/actors.go and
    # pkg/api/universal/workflow.go with pkg/messages/predefined.go
    ("POST", "/v1.0/actors/%01/1/method/m", b"", 400, "ERR_BAD_REQUEST",
     'invalid request: invalid actorType: name contains control character at position 0'),
    ("POST", "/v1.0/actors/T/1/method/a%3Fb", b"", 400, "ERR_BAD_REQUEST",
     'invalid request: method contains forbidden character: "a?b"'),
    ("PUT", "/v1.0/actors/T/1/reminders/r", b"not json", 400, "ERR_MALFORMED_REQUEST",
     "failed deserializing HTTP body: "),
    ("PUT", "/v1.0/actors/T/1/reminders/r%01", b"{}", 400, "ERR_BAD_REQUEST",
     "invalid request: name contains control character at position 1"),
    ("PUT", "/v1.0/actors/T/1/reminders/r", b'{"dueTime": "1h"}', 403,
     "ERR_ACTOR_REMINDER_NON_HOSTED", "operations on actor reminders are only possible on hosted"),
    ("POST", "/v1.0/actors/T/1/timers/t", b'{"dueTime": "1h", "callback": "cb"}', 500,
     "ERR_ACTOR_TIMER_CREATE", "error creating actor timer: "),
    ("POST", "/v1.0/actors/dapr.internal.x/1/method/m", b"", 403, "ERR_ACTOR_TYPE_RESERVED",
     'actor type "dapr.internal.x" is reserved for the Dapr workflow runtime'),
    ("POST", "/v1.0/actors/T/1/state", b'[{"operation": "upsert", "request": {"key": "k"}}]',
     400, "ERR_ACTOR_INSTANCE_MISSING", "actor instance is missing"),
    ("POST", "/v1.0-beta1/workflows/dapr/nope/pause", b"", 500, "ERR_PAUSE_WORKFLOW",
     "error pausing workflow nope: failed to pause workflow nope: no such instance exists"),
    ("POST", "/v1.0-beta1/workflows/dapr/nope/resume", b"", 500, "ERR_RESUME_WORKFLOW",
     "error resuming workflow nope: failed to resume workflow nope: no such instance exists"),
    ("POST", "/v1.0-beta1/workflows/dapr/nope/raiseEvent/e", b"", 500,
     "ERR_RAISE_EVENT_WORKFLOW", "error raising event on workflow 'nope': failed to raise"),
    ("POST", "/v1.0-beta1/workflows/dapr/nope/terminate", b"", 404,
     "ERR_INSTANCE_ID_NOT_FOUND", "unable to find workflow with the provided instance ID: nope"),
    ("POST", "/v1.0-beta1/workflows/dapr/nope/purge", b"", 404, "ERR_INSTANCE_ID_NOT_FOUND",
     "unable to find workflow with the provided instance ID: nope"),
    ("GET", "/v1.0-beta1/workflows/dapr/nope", b"", 404, "ERR_INSTANCE_ID_NOT_FOUND",
     "unable to find workflow with the provided instance ID: nope"),
    ("POST", "/v1.0-beta1/workflows/dapr/wf/start?instanceID=a.b", b"", 400,
     "ERR_INSTANCE_ID_INVALID", "workflow instance ID 'a.b' is invalid"),
]


def test_actor_routes_and_workflow_management_refuse_bad_input_as_daprd(car: Sidecar) -> None:
    """The embedded default runs actors and workflows (its sqlite store is the actor state
    store): bad input is refused at once with daprd's codes, nothing goes to the log's error
    level; a state read of an actor never activated is a 204."""
    before = car.log_path.stat().st_size
    for verb, path, body, status, code, message in ACTOR_AND_WORKFLOW_REFUSALS:
        started = time.monotonic()
        reply = http(car, verb, path, body or None)
        answer = json.loads(reply.body)
        assert (reply.status, answer["errorCode"]) == (status, code), (path, answer)
        assert answer["message"].startswith(message), (path, answer)
        assert time.monotonic() - started < 2.0, path
    assert http(car, "GET", "/v1.0/actors/T/1/state/k").status == 204
    with car.log_path.open("rb") as log:
        log.seek(before)
        lines = log.read().decode(errors="replace").splitlines()
    assert not [line for line in lines if "Traceback" in line or "level=error" in line], lines
