"""daprd's metric names, labels, units and path folding (pkg/diagnostics)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pylotto.observability.dapr_metrics import DaprMetrics, metric_path


@pytest.mark.parametrize(("path", "label"), [
    ("/v1.0/state/statestore/key1", "/v1.0/state/statestore"),
    ("//v1.0//secrets/vault/db-password", "/v1.0/secrets/vault"),
    ("/v1.0/actors/Counter/7/method/inc", "/v1.0/actors/Counter/{id}/method"),
    ("/actors/Counter/7/method/inc", "actors/Counter/{id}/method/inc"),  # as daprd: no "/"
    ("/v1.0-beta1/workflows/dapr/abc123", "/v1.0-beta1/workflows/dapr/{instanceId}"),
    ("/v1.0-beta1/workflows/dapr/order/start", "/v1.0-beta1/workflows/dapr/order/start"),
    ("/v1.0-beta1/workflows/dapr/abc/raiseEvent/paid",
     "/v1.0-beta1/workflows/dapr/{instanceId}/raiseEvent/{eventName}"),
    ("/v1.0-beta1/workflows/dapr/abc/terminate",
     "/v1.0-beta1/workflows/dapr/{instanceId}/terminate"),
    ("/v1.0/publish/pubsub/orders", "/v1.0/publish/pubsub/orders"),
    ("/v1.0/healthz", "/v1.0/healthz"),
])
def test_path_label_as_daprd_folds_it(path: str, label: str) -> None:
    assert metric_path(path) == label


def exposition(metrics: DaprMetrics) -> str:
    registry = CollectorRegistry()
    registry.register(metrics)
    return generate_latest(registry).decode()


def test_counts_keep_daprds_names_and_latency_is_in_milliseconds() -> None:
    metrics = DaprMetrics("orders", "prod")
    metrics.http_served("GET", "/v1.0/state/s/k", 200, 0, 12, 0.0042)
    metrics.http_served("BREW", "/x", 404, 3, 0, 0.0001)
    metrics.grpc_served("/dapr.proto.runtime.v1.Dapr/GetState", "NOT_FOUND", 0.002)
    metrics.component_called("state", "s", "get", True, 0.0005)
    metrics.component_called("lock", "l", "", True, 0.0005)  # no daprd family: not counted
    text = exposition(metrics)
    assert "dapr_http_server_request_count_total" not in text
    assert ('dapr_http_server_request_count{app_id="orders",method="GET",'
            'path="/v1.0/state/s",status="200"} 1.0') in text
    assert 'method="UNKNOWN",path="/x",status="404"' in text
    assert ('dapr_grpc_io_server_completed_rpcs{app_id="orders",'
            'grpc_server_method="/dapr.proto.runtime.v1.Dapr/GetState",'
            'grpc_server_status="NotFound"} 1.0') in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    latency = families["dapr_http_server_latency"]
    buckets = {s.labels["le"]: s.value for s in latency.samples
               if s.name.endswith("_bucket") and s.labels["path"] == "/v1.0/state/s"}
    assert buckets["4"] == 0 and buckets["5"] == 1  # 4.2 ms
    state = [s for s in families["dapr_component_state_count"].samples]
    assert [s.labels for s in state] == [{"app_id": "orders", "component": "s",
                                          "namespace": "prod", "operation": "get",
                                          "success": "true"}]
    assert "lock" not in text


def test_nothing_recorded_exports_no_dapr_family() -> None:
    assert "dapr_" not in exposition(DaprMetrics("a"))


async def test_calls_to_a_grpc_app_are_counted_by_method_and_status() -> None:
    import grpc

    from pylotto.appchannel.grpc_channel import dial_app
    from pylotto.observability.grpc_client_metrics import ClientMetrics

    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        if request == b"bad":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad")
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "test.App", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    metrics = DaprMetrics("caller")
    channel, _ = dial_app(f"127.0.0.1:{port}", tls=False,
                          interceptors=(ClientMetrics(metrics),))
    try:
        call = channel.unary_unary("/test.App/Echo")
        assert await call(b"hi") == b"hi"
        with pytest.raises(grpc.aio.AioRpcError):
            await call(b"bad")
    finally:
        await channel.close()
        await server.stop(None)
    text = exposition(metrics)
    for status in ("OK", "InvalidArgument"):
        assert ('dapr_grpc_io_client_completed_rpcs{app_id="caller",'
                f'grpc_client_method="/test.App/Echo",grpc_client_status="{status}"}} 1.0'
                ) in text
    assert "dapr_grpc_io_client_roundtrip_latency_bucket" in text
