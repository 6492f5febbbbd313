"""Endpoints read as Dapr's SDK reads them, and the retry policy's choices."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from pylotto.client import ClientError, RetryPolicy
from pylotto.client.endpoint import Endpoint, from_environment, parse
from pylotto.client.retry import IDEMPOTENT
from pylotto.proto.layotto import runtime_pb2


@pytest.mark.parametrize(("address", "expected"), [
    ("127.0.0.1:50001", Endpoint("127.0.0.1:50001")),
    ("localhost:50001?tls=true", Endpoint("localhost:50001", tls=True)),
    ("localhost:50001?tls=false", Endpoint("localhost:50001")),
    ("https://sidecar.example:443", Endpoint("sidecar.example:443", tls=True)),
    ("http://127.0.0.1:50001", Endpoint("127.0.0.1:50001")),
    ("dns:sidecar:50001?tls=true", Endpoint("dns:sidecar:50001", tls=True)),
    ("unix:///tmp/dapr.sock", Endpoint("unix:///tmp/dapr.sock")),
])
def test_endpoints(address: str, expected: Endpoint) -> None:
    assert parse(address) == expected


@pytest.mark.parametrize("address", ["ftp://x:1", "x:1?tls=true&y=1",
                                     "https://x:1?tls=false"])
def test_bad_endpoints_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="x:1"):
        parse(address)


def test_the_environment_is_read_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PYLOTTO_GRPC_ADDRESS", "DAPR_GRPC_ENDPOINT", "runtime_GRPC_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert from_environment() == Endpoint("127.0.0.1:34904")
    monkeypatch.setenv("runtime_GRPC_PORT", "7")
    assert from_environment() == Endpoint("127.0.0.1:7")
    monkeypatch.setenv("DAPR_GRPC_ENDPOINT", "https://dapr:443")
    assert from_environment() == Endpoint("dapr:443", tls=True)
    monkeypatch.setenv("PYLOTTO_GRPC_ADDRESS", "127.0.0.1:9")
    assert from_environment() == Endpoint("127.0.0.1:9")


class Flaky:
    """Fails with ``code`` ``failures`` times, then answers."""

    def __init__(self, code: grpc.StatusCode, failures: int) -> None:
        self.code = code
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ClientError(self.code, "down")
        return "ok"


def fast(max_attempts: int = 3, **options: Any) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, initial_backoff=0.001, max_backoff=0.002,
                       **options)


async def test_transient_failures_of_idempotent_calls_are_retried() -> None:
    flaky = Flaky(grpc.StatusCode.UNAVAILABLE, 2)
    assert await fast().run("GetState", flaky) == "ok"
    assert flaky.calls == 3
    flaky = Flaky(grpc.StatusCode.UNAVAILABLE, 3)
    with pytest.raises(ClientError):
        await fast().run("GetState", flaky)
    assert flaky.calls == 3  # bounded


async def test_other_codes_and_non_idempotent_calls_are_not_retried() -> None:
    refused = Flaky(grpc.StatusCode.INVALID_ARGUMENT, 1)
    with pytest.raises(ClientError):
        await fast().run("GetState", refused)
    assert refused.calls == 1
    publish = Flaky(grpc.StatusCode.UNAVAILABLE, 1)
    with pytest.raises(ClientError):
        await fast().run("PublishEvent", publish)
    assert publish.calls == 1
    conditional = Flaky(grpc.StatusCode.UNAVAILABLE, 1)  # a save with an etag
    with pytest.raises(ClientError):
        await fast().run("SaveState", conditional, idempotent=False)
    asked = Flaky(grpc.StatusCode.UNAVAILABLE, 1)
    assert await fast(non_idempotent=True).run("PublishEvent", asked) == "ok"
    limited = Flaky(grpc.StatusCode.RESOURCE_EXHAUSTED, 1)
    codes = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
    assert await fast(codes=codes).run("GetState", limited) == "ok"


def test_backoff_grows_to_its_bound_and_attempts_follow_dapr_api_max_retries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2)
    waits = [policy.backoff(n) for n in range(6)]
    assert 0.05 <= waits[0] <= 0.1 and 0.5 <= waits[5] <= 1.0
    monkeypatch.setenv("DAPR_API_MAX_RETRIES", "5")
    assert RetryPolicy().max_attempts == 5
    monkeypatch.delenv("DAPR_API_MAX_RETRIES")
    assert RetryPolicy().max_attempts == 3
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_the_idempotent_calls_are_rpcs_of_the_runtime_api() -> None:
    services = runtime_pb2.DESCRIPTOR.services_by_name["Runtime"].methods_by_name
    assert {*services, "QueryState"} >= IDEMPOTENT
    assert not IDEMPOTENT & {"PublishEvent", "InvokeService", "InvokeBinding", "TryLock",
                             "ExecuteStateTransaction"}
