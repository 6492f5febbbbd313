"""Logs: the level changes while running (actuator), and lines of a traced call carry its
trace id."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def loggers(car: Sidecar, level: str | None = None) -> str:
    data = None if level is None else json.dumps({"level": level}).encode()
    request = urllib.request.Request(f"{car.actuator_url}/actuator/loggers", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return str(json.load(resp)["level"])


def test_level_at_runtime_and_trace_ids_in_lines(tmp_path: Path) -> None:
    car = Sidecar(tmp_path, extra_args=["--log-level", "info"])
    car.extra_config = {"tracing": {"exporter": "console"}}
    car.start()
    try:
        assert loggers(car) == "info"
        assert re.search(r'msg="Component loaded: \S+ \(state\.[a-z0-9.-]+/v1\)"', car.logs())
        stub = car.stub()
        parent = (("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01"),)
        with pytest.raises(grpc.RpcError):
            stub.GetState(runtime_pb2.GetStateRequest(store_name="nope", key="quiet"),
                          metadata=parent)
        assert loggers(car, "debug") == "debug"
        with pytest.raises(grpc.RpcError):
            stub.GetState(runtime_pb2.GetStateRequest(store_name="nope", key="k"),
                          metadata=parent)
        time.sleep(0.2)
        # log records only: the console exporter's spans (printed when its batch is due, so
        # sometimes within this test) carry the same text in their exception events
        lines = [line for line in car.logs().splitlines()
                 if line.startswith("time=") and "nope is not found" in line]
        assert len(lines) == 1  # only the call made after the switch to debug
        assert f"trace_id={TRACE_ID}" in lines[0]
        with pytest.raises(urllib.error.HTTPError) as info:
            loggers(car, "chatty")
        assert info.value.code == 400
    finally:
        car.stop()
