"""/metrics after known traffic: exact counts per API, per component and per pub/sub outcome."""

from __future__ import annotations

import time
import urllib.request

import grpc
import pytest
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
