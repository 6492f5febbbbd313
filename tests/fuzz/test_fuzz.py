"""A bounded fuzz of every RPC of the Layotto and Dapr gRPC APIs and every route of the Dapr HTTP
API, against the real sidecar: structured requests built from the proto descriptors and the
routes, plus raw bytes.

A client's mistake is never answered UNKNOWN, INTERNAL or HTTP 500 (on the Dapr APIs, unless it
is daprd's own answer: :data:`DAPRD_MISTAKE_ANSWERS`; on the Layotto API, unless it is Layotto's:
:data:`LAYOTTO_MISTAKE_ANSWERS`); the sidecar still answers
afterwards; and its log stays quiet — at most :data:`MAX_LOG_LINES_PER_1000` lines per 1,000
bad calls, never a traceback. The tests run in this file's order; the last one checks the
sidecar and the log after all the others and prints the run's figures.
"""

from __future__ import annotations

import json
import os
import re
import time
from functools import cache

import grpc
import pytest
from dapr.proto.runtime.v1 import dapr_pb2, dapr_pb2_grpc
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pylotto.core.dapr_errors import DAPR_ERRORS
from pylotto.core.errors import LAYOTTO_LOOKUPS, grpc_code
from pylotto.facades.dapr.servicer import DaprServicer
from pylotto.facades.layotto.servicer import LayottoRuntimeServicer
from pylotto.proto.extensions import state_query_pb2
from pylotto.proto.layotto import delay_queue_pb2, runtime_pb2, runtime_pb2_grpc
from tests.fuzz import grpc_calls, http_calls
from tests.fuzz.conftest import EXAMPLES, SEED, FuzzTarget
from tests.fuzz.grpc_calls import Method
from tests.fuzz.strategies import mangled, messages

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz, pytest.mark.timeout(900)]

BAD_GRPC_CODES = frozenset({"UNKNOWN", "INTERNAL"})
"""Answers a client's mistake never gets (a hang, DEADLINE_EXCEEDED of a unary call, neither)."""
GRPC_SERVER_ANSWERS_500 = frozenset({"ERR_NOT_CONFIGURED"})
"""HTTP 500 error codes that are the reference's answer to the sidecar's configuration, not to
the request: Dapr answers 500 when no store of the kind is configured."""
MAX_LOG_LINES_PER_1000 = 25

def _daprd_answers() -> re.Pattern[str]:
    """daprd's own INTERNAL / HTTP 500 answers (the messages of the Dapr error table's rows):
    daprd answers some client mistakes so — an unknown output binding is INTERNAL "error
    invoking output binding ...", a query that is not JSON INTERNAL "state store S query
    failed: ...", a missing secret 500 ERR_SECRET_GET — and the Dapr API keeps the reference's
    answer for drop-in compatibility. What the table does not render (an unexpected exception:
    "internal error") still fails the fuzz."""
    patterns = set()
    for row in DAPR_ERRORS.values():
        for wire in (row.grpc, row.http):
            if wire.grpc in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN) or (
                    wire.http >= 500):
                literal = re.split(r"\{[^}]*\}", wire.message)
                patterns.add(".*".join(re.escape(part) for part in literal))
    return re.compile("|".join(f"(?:{p})" for p in sorted(patterns)), re.DOTALL)


DAPRD_MISTAKE_ANSWERS = _daprd_answers()


def _layotto_answers() -> re.Pattern[str]:
    """Layotto's own UNKNOWN / INTERNAL answers to a wrong component name (the texts of
    :data:`~pylotto.core.errors.LAYOTTO_LOOKUPS` whose kind answers so: an unknown hello
    service is UNKNOWN "no instance found", an unknown configuration store UNKNOWN
    "configure store [x] don't support now"): the reference's answer on the Layotto API."""
    # and SubscribeTopicEvents' plain errors for a first message it cannot use (Layotto's,
    # as daprd's: bare Go errors)
    patterns = {re.escape(text) for text in (
        "initial request is required", "pubsubName is required", "topic is required")}
    for kind, text in LAYOTTO_LOOKUPS.values():
        if grpc_code(kind("")).name in BAD_GRPC_CODES:
            literal = re.split(r"\{[^}]*\}", text)
            patterns.add(".*".join(re.escape(part) for part in literal))
    return re.compile("|".join(f"(?:{p})" for p in sorted(patterns)), re.DOTALL)


LAYOTTO_MISTAKE_ANSWERS = _layotto_answers()

LAYOTTO = [
    *grpc_calls.methods_of(runtime_pb2.DESCRIPTOR.services_by_name["Runtime"]),
    *grpc_calls.methods_of(state_query_pb2.DESCRIPTOR.services_by_name["StateQuery"]),
    *grpc_calls.methods_of(delay_queue_pb2.DESCRIPTOR.services_by_name["DelayQueue"]),
]
DAPR = grpc_calls.methods_of(dapr_pb2.DESCRIPTOR.services_by_name["Dapr"],
                             leave_out=("Shutdown",))
"""Every Dapr RPC but Shutdown (it would end the sidecar under test)."""
ROUTES = http_calls.routes()

FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)


@cache
def _requests(method: Method) -> st.SearchStrategy[Message]:
    return messages(method.descriptor.input_type)


def _served(methods: list[Method], servicer: type, base: type) -> st.SearchStrategy[Method]:
    """Every method, those ``servicer`` implements (does not inherit from the generated
    ``base``) three times as often: the others all answer UNIMPLEMENTED the same way."""
    implemented = [m for m in methods if getattr(servicer, m.descriptor.name, None)
                   is not getattr(base, m.descriptor.name, None)]
    assert implemented, servicer
    every = st.sampled_from(methods)
    return st.one_of(st.sampled_from(implemented), st.sampled_from(implemented),
                     st.sampled_from(implemented), every)


@cache
def _with_method(method: Method) -> st.SearchStrategy[tuple[Method, Message]]:
    return _requests(method).map(lambda request: (method, request))


def _structured(methods: st.SearchStrategy[Method]) -> st.SearchStrategy[tuple[Method, Message]]:
    # strategies built once per method (a flatmap building them per case costs ~50 ms a case)
    return methods.flatmap(_with_method)


@cache
def _raw_payloads(method: Method) -> st.SearchStrategy[tuple[Method, bytes]]:
    payloads = st.one_of(st.binary(max_size=64), _requests(method).flatmap(
        lambda request: mangled(request.SerializeToString())))
    return payloads.map(lambda payload: (method, payload))


def _raw(methods: list[Method]) -> st.SearchStrategy[tuple[Method, bytes]]:
    return st.sampled_from(methods).flatmap(_raw_payloads)


def _check_grpc(target: FuzzTarget, dialect: str, address: str, method: Method,
                payload: bytes) -> grpc_calls.Answer:
    channel = _channel(address)
    answer = grpc_calls.call(channel, method, payload)
    code = answer.code
    if code == "DEADLINE_EXCEEDED" and not (method.server_streaming or method.client_streaming):
        code = "HANG"
    target.tally.count(dialect, code)
    reference = DAPRD_MISTAKE_ANSWERS if method.path.startswith("/dapr.") else (
        LAYOTTO_MISTAKE_ANSWERS)
    if (code in BAD_GRPC_CODES and not reference.fullmatch(answer.details)) or code == "HANG":
        target.tally.bad.append(f"{method.path} {code} {answer.details[:200]!r} "
                                f"payload={payload[:80]!r}")
        raise AssertionError(f"{method.path} answered {code}: {answer.details[:300]}")
    return answer


def _check_structured(target: FuzzTarget, dialect: str, address: str, method: Method,
                      request: Message, reads: dict[str, Method]) -> None:
    """The call, and after a state write it answered OK, a read of each key written: a
    write must never leave a key that then fails every read."""
    answer = _check_grpc(target, dialect, address, method, request.SerializeToString())
    if answer.code != "OK" or method.descriptor.name != "SaveState":
        return
    get = reads["GetState"]
    for item in request.states:  # type: ignore[attr-defined]
        read = GetMessageClass(get.descriptor.input_type)(
            store_name=request.store_name, key=item.key)  # type: ignore[attr-defined]
        _check_grpc(target, dialect + "-read-back", address, get, read.SerializeToString())


_channels: dict[str, grpc.Channel] = {}


def _channel(address: str) -> grpc.Channel:
    if address not in _channels:
        _channels[address] = grpc.insecure_channel(address)
    return _channels[address]


LAYOTTO_READS = {m.descriptor.name: m for m in LAYOTTO}
DAPR_READS = {m.descriptor.name: m for m in DAPR}


@seed(SEED)
@FUZZ
@given(case=_structured(_served(LAYOTTO, LayottoRuntimeServicer, runtime_pb2_grpc.RuntimeServicer)))
def test_layotto_grpc(target: FuzzTarget, case: tuple[Method, Message]) -> None:
    _check_structured(target, "layotto-grpc", target.car.grpc_address, *case, LAYOTTO_READS)


@seed(SEED)
@FUZZ
@given(case=_structured(_served(DAPR, DaprServicer, dapr_pb2_grpc.DaprServicer)))
def test_dapr_grpc(target: FuzzTarget, case: tuple[Method, Message]) -> None:
    _check_structured(target, "dapr-grpc", target.car.dapr_grpc_address, *case, DAPR_READS)


@seed(SEED)
@FUZZ
@given(case=_raw(LAYOTTO + DAPR))
def test_grpc_raw_bytes(target: FuzzTarget, case: tuple[Method, bytes]) -> None:
    method = case[0]
    dialect = "dapr-grpc-raw" if method.path.startswith("/dapr.") else "layotto-grpc-raw"
    address = target.car.dapr_grpc_address if dialect.startswith("dapr") else (
        target.car.grpc_address)
    _check_grpc(target, dialect, address, *case)


_http: dict[int, http_calls.HttpClient] = {}


@seed(SEED)
@FUZZ
@given(case=st.sampled_from(ROUTES).flatmap(http_calls.cases))
def test_dapr_http(target: FuzzTarget, case: http_calls.HttpCase) -> None:
    port = target.car.dapr_http_port
    client = _http.setdefault(port, http_calls.HttpClient(port))
    status, error_code, message = client.send(case)
    target.tally.count("dapr-http", str(status))
    if status >= 500 and status not in (501, 503, 504) and (
            error_code not in GRPC_SERVER_ANSWERS_500) and not (
            DAPRD_MISTAKE_ANSWERS.fullmatch(message)):
        target.tally.bad.append(f"{case.method} {case.path[:120]} {status} {error_code} "
                                f"headers={case.headers} body={case.body[:80]!r}")
        raise AssertionError(f"{case.method} {case.path[:200]} answered {status} {error_code}")


@seed(SEED)
@FUZZ
@given(data=http_calls.raw_requests())
def test_http_raw_bytes(target: FuzzTarget, data: bytes) -> None:
    status = http_calls.send_raw(target.car.dapr_http_port, data)
    target.tally.count("dapr-http-raw", str(status))
    if status >= 500:
        target.tally.bad.append(f"raw {data[:80]!r} {status}")
        raise AssertionError(f"raw request {data[:100]!r} answered {status}")


def test_sidecar_still_answers_and_the_log_stays_quiet(
        target: FuzzTarget, capsys: pytest.CaptureFixture[str]) -> None:
    car = target.car
    assert car.process is not None and car.process.poll() is None, "the sidecar died"
    health = health_pb2_grpc.HealthStub(_channel(car.grpc_address))
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == (
        health_pb2.HealthCheckResponse.SERVING)
    stub = car.stub()
    stub.SaveState(runtime_pb2.SaveStateRequest(
        store_name="in-memory", states=[runtime_pb2.StateItem(key="after-fuzz", value=b"ok")]),
        timeout=5)
    got = stub.GetState(runtime_pb2.GetStateRequest(store_name="in-memory", key="after-fuzz"),
                        timeout=5)
    assert got.data == b"ok"
    client = http_calls.HttpClient(car.dapr_http_port)
    assert client.send(http_calls.HttpCase("GET", "/v1.0/healthz"))[0] == 204
    client.close()
    time.sleep(0.3)  # the last lines reach the log file
    lines = target.log_since_start()
    calls = target.tally.calls
    figures = {
        "seed": SEED, "examples_per_test": EXAMPLES, "calls": calls,
        "answers": target.tally.by_dialect(), "log_lines": len(lines),
        "log_lines_per_1000_calls": round(1000 * len(lines) / max(calls, 1), 2),
        "bad": target.tally.bad[:20],
    }
    report = os.environ.get("PYLOTTO_FUZZ_REPORT")
    if report:
        with open(report, "w") as out:
            json.dump({**figures, "log": lines}, out, indent=1)
    with capsys.disabled():
        print("\nfuzz figures:", json.dumps(figures, indent=1))
    assert calls > 0
    assert not [line for line in lines if line.startswith("Traceback")], "\n".join(lines[:60])
    assert len(lines) <= max(10, MAX_LOG_LINES_PER_1000 * calls / 1000), "\n".join(lines[:80])
