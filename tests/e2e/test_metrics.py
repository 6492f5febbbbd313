"""/metrics after known traffic: exact counts per API, per component and per pub/sub outcome."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from dapr.proto.runtime.v1 import dapr_pb2_grpc, state_pb2
from prometheus_client.parser import text_string_to_metric_families

from pylotto.client import Client, EventStatus
from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar


def scrape(car: Sidecar) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"{car.actuator_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_known_traffic(sidecar: Sidecar) -> None:
    stub = sidecar.stub()
    for n in range(3):
        stub.SaveState(runtime_pb2.SaveStateRequest(store_name="in-memory", states=[
            runtime_pb2.StateItem(key=f"m{n}", value=b"v")]))
    stub.GetState(runtime_pb2.GetStateRequest(store_name="in-memory", key="m0"))
    with pytest.raises(grpc.RpcError):
        stub.GetState(runtime_pb2.GetStateRequest(store_name="nope", key="k"))
    urllib.request.urlopen(f"{sidecar.dapr_http_url}/v1.0/state/in-memory/m1", timeout=5)
    with Client(sidecar.grpc_address) as client, \
            client.subscribe("in-memory", "metered") as subscription:
        events = iter(subscription)
        client.publish_event("in-memory", "metered", b"a")
        client.publish_event("in-memory", "metered", b"b")
        first = next(events)
        subscription.ack(first, EventStatus.RETRY)
        for _ in range(2):
            subscription.ack(next(events))
    time.sleep(0.3)
    samples = scrape(sidecar)
    assert value(samples, "pylotto_api_requests_total", dialect="grpc", api="SaveState",
                 code="OK") == 3
    assert value(samples, "pylotto_api_requests_total", dialect="grpc", api="GetState",
                 code="OK") == 1
    assert value(samples, "pylotto_api_requests_total", dialect="grpc", api="GetState",
                 code="INVALID_ARGUMENT") == 1
    assert value(samples, "pylotto_api_requests_total", dialect="http", api="GetState",
                 code="200") == 1
    assert value(samples, "pylotto_api_latency_seconds_count", dialect="grpc",
                 api="SaveState") == 3
    assert value(samples, "pylotto_component_calls_total", component="state store in-memory",
                 outcome="ok") == 5  # 3 saves, 1 gRPC get, 1 HTTP get
    assert value(samples, "pylotto_pubsub_messages_total", pubsub="in-memory", topic="metered",
                 outcome="delivered") == 2
    assert value(samples, "pylotto_pubsub_messages_total", pubsub="in-memory", topic="metered",
                 outcome="retried") == 1
    assert value(samples, "pylotto_api_in_flight", dialect="grpc") == 0
    assert value(samples, "process_resident_memory_bytes") > 0


GRAFANA = json.loads((Path(__file__).parents[1] / "fixtures" / "dapr_grafana_queries.json")
                     .read_text())


def test_dapr_named_metrics_answer_daprs_grafana_dashboards(tmp_path: Path,
                                                            echo_port: int) -> None:
    """Every metric the panels of Dapr's sidecar and actor dashboards query, with the labels
    they group by, after traffic on each path: Dapr HTTP and gRPC APIs, a component, pub/sub,
    and calls to the app over HTTP (self-invocation)."""
    car = Sidecar(tmp_path, app={"app_id": "graf", "port": echo_port}).start()
    try:
        with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/state/in-memory/k1",
                                    timeout=5) as resp:
            assert resp.status in (200, 204)
        urllib.request.urlopen(urllib.request.Request(
            f"{car.dapr_http_url}/v1.0/invoke/graf/method/hello", data=b"x", method="POST"),
            timeout=5).read()
        dapr = dapr_pb2_grpc.DaprStub(grpc.insecure_channel(car.dapr_grpc_address))
        dapr.GetState(state_pb2.GetStateRequest(store_name="in-memory", key="k1"))
        with pytest.raises(grpc.RpcError):
            dapr.GetState(state_pb2.GetStateRequest(store_name="nope", key="k1"))
        urllib.request.urlopen(urllib.request.Request(
            f"{car.dapr_http_url}/v1.0/publish/in-memory/t", data=b"{}",
            headers={"Content-Type": "application/json"}, method="POST"), timeout=5).read()
        time.sleep(0.3)
        with urllib.request.urlopen(f"{car.actuator_url}/metrics", timeout=5) as resp:
            families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
    finally:
        car.stop()
    samples = {s.name: s for f in families.values() for s in f.samples}
    missing = {name: labels for name, labels in GRAFANA["answered"].items()
               if name not in samples or not set(labels) <= set(samples[name].labels)}
    assert not missing, sorted(missing)
    for name in GRAFANA["not_answered"]:
        assert name not in samples, f"{name} is served now: move it to 'answered'"
    by_key = {(s.name, frozenset(s.labels.items())): s.value
              for f in families.values() for s in f.samples}
    assert by_key[("dapr_grpc_io_server_completed_rpcs", frozenset({
        "app_id": "graf", "grpc_server_method": "/dapr.proto.runtime.v1.Dapr/GetState",
        "grpc_server_status": "InvalidArgument"}.items()))] == 1
    assert by_key[("dapr_http_server_response_count", frozenset({
        "app_id": "graf", "method": "GET", "path": "/v1.0/state/in-memory",
        "status": "200" if ("dapr_http_server_response_count", frozenset({
            "app_id": "graf", "method": "GET", "path": "/v1.0/state/in-memory",
            "status": "200"}.items())) in by_key else "204"}.items()))] == 1
    assert by_key[("dapr_http_client_completed_count", frozenset({
        "app_id": "graf", "method": "POST", "path": "/hello", "status": "200"}.items()))] == 1
    assert by_key[("dapr_component_state_count", frozenset({
        "app_id": "graf", "component": "in-memory", "namespace": "", "operation": "get",
        "success": "true"}.items()))] == 2
    assert by_key[("dapr_component_pubsub_egress_count", frozenset({
        "app_id": "graf", "component": "in-memory", "namespace": "", "success": "true",
        "topic": "t"}.items()))] == 1
    assert by_key[("dapr_runtime_component_loaded", frozenset({"app_id": "graf"}.items()))] >= 1
