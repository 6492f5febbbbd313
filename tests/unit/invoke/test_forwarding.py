"""Which headers travel with an invocation, path by path (the rules of one module)."""

from __future__ import annotations

from pylotto.capabilities import forwarding
from pylotto.capabilities.invoke import DAPR_TIMEOUT_MS, served_timeout


def test_grpc_metadata_drops_grpc_own_keys_and_binary_values() -> None:
    got = forwarding.from_grpc_metadata([
        (":authority", "x"), ("grpc-timeout", "1S"), ("user-agent", "grpc-python"),
        ("trace-bin", b"\x00"), ("x-tenant", "t1"), ("dapr-api-token", "secret"),
    ])
    assert got == [("x-tenant", "t1"), ("dapr-api-token", "secret")]


def test_http_headers_drop_the_hop_and_the_api_token() -> None:
    got = forwarding.from_http_headers([
        ("Host", "h"), ("Content-Length", "3"), ("Content-Type", "text/plain"),
        ("dapr-api-token", "secret"), ("X-Tenant", "t1"),
    ])
    assert got == [("X-Tenant", "t1")]


def test_to_the_app_and_to_a_sidecar() -> None:
    headers = [("rpc_request_timeout", "10"), ("id", "other"), ("X-Tenant", "t1")]
    assert forwarding.to_app(headers) == [("X-Tenant", "t1")]
    assert forwarding.to_sidecar(headers) == [("id", "other"), ("X-Tenant", "t1")]
    assert forwarding.served(headers, "caller") == [
        ("id", "other"), ("X-Tenant", "t1"), ("dapr-caller-app-id", "caller")]


def test_proxied_metadata_keeps_binary_and_sets_the_caller() -> None:
    got = forwarding.proxied([(":path", "/x"), ("grpc-timeout", "1S"), ("trace-bin", b"\x00"),
                              ("dapr-caller-app-id", "old"), ("dapr-app-id", "b")], "a")
    assert got == [("trace-bin", b"\x00"), ("dapr-app-id", "b"), ("dapr-caller-app-id", "a")]


def test_response_metadata_is_valid_grpc_metadata() -> None:
    got = forwarding.to_grpc_metadata([("X-Ok", "v"), ("grpc-status", "0"), ("Bad Key", "v"),
                                       ("x-bin", "v"), ("x-tab", "a\tb")])
    assert got == [("x-ok", "v")]


def test_served_timeout() -> None:
    assert served_timeout(2000, None) == 2.0
    assert served_timeout(2000, 0.5) == 0.5
    assert served_timeout(0, 1.5) == 1.5
    assert served_timeout(0, None) == DAPR_TIMEOUT_MS / 1000


def test_headers_to_a_grpc_app_are_converted_as_dapr_does() -> None:
    from pylotto.capabilities.forwarding import to_grpc_app

    assert to_grpc_app([("Content-Type", "text/plain"), ("X-Custom", "1"),
                        ("traceparent", "00-x"), ("tracestate", "a=b"),
                        ("rpc_request_timeout", "5"), ("Bad Key", "v"),
                        ("x-nonprintable", "\x01"), ("User-Agent", "curl"),
                        ("dapr-api-token", "the-sidecars")]) == [
        ("dapr-content-type", "text/plain"), ("x-custom", "1")]
