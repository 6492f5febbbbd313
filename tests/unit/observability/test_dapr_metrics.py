"""daprd's metric names, labels, units and path folding (pkg/diagnostics)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from pylotto.capabilities.actors.api import (
    ActorCall,
    ActorHost,
    ActorRef,
    EntityConfig,
    Reentrancy,
    Tick,
    TickOutcome,
    TimerSpec,
)
from pylotto.capabilities.actors.placement import LeasedPlacement
from pylotto.capabilities.actors.reminders import SchedulerReminders, _TickChannel
from pylotto.capabilities.actors.table import ActorTable
from pylotto.capabilities.actors.timers import MemoryTimers
from pylotto.capabilities.actors.turns import TurnLock
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.state import StateCapability
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import StateStore
from pylotto.config.model import ActorsConfig, AppConfig
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from pylotto.observability.dapr_metrics import DaprMetrics, metric_path
from tests.unit.capabilities.actors.host import RecordingHost, eventually


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


# ---- the actor runtime's and mTLS's families (dapr/dapr pkg/diagnostics/service_monitoring.go)


async def memory_store(tmp_path: Path) -> StateStore:
    cls = resolve("state", "in-memory")
    store = cls("actorstore", decode(cls.Settings, {}, component="state.actorstore"),
                ComponentContext(app_id="orders", data_dir=tmp_path))
    assert isinstance(store, StateStore)
    await store.init()
    return store


def families_of(metrics: DaprMetrics) -> dict[str, Metric]:
    return {f.name: f for f in text_string_to_metric_families(exposition(metrics))}


def samples_of(metrics: DaprMetrics, name: str) -> dict[frozenset[tuple[str, str]], float]:
    family = families_of(metrics).get(name)
    return {} if family is None else {frozenset(s.labels.items()): s.value
                                      for s in family.samples}


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def test_actor_and_mtls_families_have_daprds_names_labels_and_kinds() -> None:
    metrics = DaprMetrics("orders")
    metrics.actor_status_reported(True)
    metrics.actor_status_reported(True)
    metrics.actor_status_reported(False)
    metrics.actor_table_updated()
    metrics.actor_halted("Counter")
    metrics.actor_deactivated("Counter", True)
    metrics.actor_deactivated("Counter", False)
    metrics.actor_call_waiting("Counter", 1)
    metrics.actor_call_waiting("Counter", 1)
    metrics.actor_call_waiting("Counter", -1)
    metrics.actor_timer_count("Counter", 3)
    metrics.actor_timer_count("Counter", 2)
    metrics.actor_timer_fired("Counter", True)
    metrics.actor_reminder_fired("Counter", False)
    metrics.mtls_initialized()
    metrics.mtls_failed("read")
    text = exposition(metrics)
    expected = {
        "dapr_runtime_actor_status_report_total":
            {labels(app_id="orders", actor_type="", operation="send"): 2},
        "dapr_runtime_actor_status_report_fail_total":
            {labels(app_id="orders", actor_type="", operation="send", reason="status"): 1},
        "dapr_runtime_actor_table_operation_recv_total":
            {labels(app_id="orders", actor_type="", operation="update"): 1},
        "dapr_runtime_actor_rebalanced_total": {labels(app_id="orders", actor_type="Counter"): 1},
        "dapr_runtime_actor_deactivated_total":
            {labels(app_id="orders", actor_type="Counter"): 1},
        "dapr_runtime_actor_deactivated_failed_total":
            {labels(app_id="orders", actor_type="Counter"): 1},
        "dapr_runtime_actor_pending_actor_calls":
            {labels(app_id="orders", actor_type="Counter"): 1},
        "dapr_runtime_actor_timers": {labels(app_id="orders", actor_type="Counter"): 2},
        "dapr_runtime_actor_timers_fired_total":
            {labels(app_id="orders", actor_type="Counter", success="true"): 1},
        "dapr_runtime_actor_reminders_fired_total":
            {labels(app_id="orders", actor_type="Counter", success="false"): 1},
        "dapr_runtime_mtls_init_total": {labels(app_id="orders"): 1},
        "dapr_runtime_mtls_init_fail_total": {labels(app_id="orders", reason="read"): 1},
    }
    for name, series in expected.items():
        assert samples_of(metrics, name) == series, name
    families = families_of(metrics)
    assert families["dapr_runtime_actor_pending_actor_calls"].type == "gauge"
    assert families["dapr_runtime_actor_timers"].type == "gauge"
    assert families["dapr_runtime_actor_rebalanced_total"].type == "unknown"
    assert "dapr_runtime_actor_rebalanced_total_total" not in text


async def test_calls_waiting_for_their_turn_are_pending_actor_calls() -> None:
    metrics = DaprMetrics("orders")
    lock = TurnLock(Reentrancy(), "Counter||1",
                    functools.partial(metrics.actor_call_waiting, "Counter"))
    pending = labels(app_id="orders", actor_type="Counter")
    release = asyncio.Event()
    inside = asyncio.Event()

    async def call() -> None:
        async with lock.turn():
            inside.set()
            await release.wait()

    first = asyncio.create_task(call())
    await inside.wait()
    assert samples_of(metrics, "dapr_runtime_actor_pending_actor_calls") == {pending: 0}
    waiting = [asyncio.create_task(call()) for _ in range(2)]
    for _ in range(3):
        await asyncio.sleep(0)
    assert samples_of(metrics, "dapr_runtime_actor_pending_actor_calls") == {pending: 2}
    release.set()
    await asyncio.gather(first, *waiting)
    assert samples_of(metrics, "dapr_runtime_actor_pending_actor_calls") == {pending: 0}


async def test_deactivations_count_rebalanced_and_deactivated_or_failed() -> None:
    metrics = DaprMetrics("orders")
    config = EntityConfig()
    ok, refusing = RecordingHost({"Counter": config}), Refusing({"Refused": config})
    hosts = {"Counter": ok, "Refused": refusing}

    def hosting(actor_type: str) -> tuple[ActorHost, EntityConfig] | None:
        return (hosts[actor_type], config) if actor_type in hosts else None

    table = ActorTable(hosting, lambda ref: True, metrics=metrics)
    for ref in (ActorRef("Counter", "1"), ActorRef("Counter", "2"), ActorRef("Refused", "1")):
        await table.run(ActorCall(ref, "hello"))
    await table.deactivate(table.actors())
    assert samples_of(metrics, "dapr_runtime_actor_rebalanced_total") == {
        labels(app_id="orders", actor_type="Counter"): 2,
        labels(app_id="orders", actor_type="Refused"): 1}
    assert samples_of(metrics, "dapr_runtime_actor_deactivated_total") == {
        labels(app_id="orders", actor_type="Counter"): 2}
    assert samples_of(metrics, "dapr_runtime_actor_deactivated_failed_total") == {
        labels(app_id="orders", actor_type="Refused"): 1}
    await table.stop()


class Refusing(RecordingHost):
    """An app whose DELETE answers an error."""

    async def deactivate(self, actor: ActorRef) -> bool:
        await super().deactivate(actor)
        return False


async def test_timers_are_counted_per_type_and_their_ticks_by_outcome() -> None:
    metrics = DaprMetrics("orders")
    timers = MemoryTimers(metrics=metrics)
    ticked = asyncio.Event()
    outcomes = iter([TickOutcome(delivered=True), TickOutcome(delivered=False)])

    async def sink(tick: Tick) -> TickOutcome:
        outcome = next(outcomes, TickOutcome(delivered=True))
        if not outcome.delivered:
            ticked.set()
        return outcome

    timers.start(sink)
    actor = ActorRef("Counter", "1")
    count = labels(app_id="orders", actor_type="Counter")
    await timers.register(actor, "often", TimerSpec(period="10ms"))
    await timers.register(actor, "later", TimerSpec(due_time="1h"))
    assert samples_of(metrics, "dapr_runtime_actor_timers") == {count: 2}
    await ticked.wait()
    await timers.unregister(actor, "often")
    assert samples_of(metrics, "dapr_runtime_actor_timers") == {count: 1}
    fired = samples_of(metrics, "dapr_runtime_actor_timers_fired_total")
    assert fired[labels(app_id="orders", actor_type="Counter", success="true")] >= 1
    assert fired[labels(app_id="orders", actor_type="Counter", success="false")] == 1
    await timers.stop()
    assert samples_of(metrics, "dapr_runtime_actor_timers") == {count: 0}


async def test_reminder_ticks_count_by_outcome(tmp_path: Path) -> None:
    metrics = DaprMetrics("orders")
    store = await memory_store(tmp_path)
    reminders = SchedulerReminders.over_component(store, "orders", tmp_path)
    reminders.metrics = metrics
    answers = iter([TickOutcome(delivered=True), TickOutcome(delivered=True, cancel=True),
                    TickOutcome(delivered=False)])

    async def sink(tick: Tick) -> TickOutcome:
        return next(answers)

    await reminders.start(sink)
    channel = _TickChannel(reminders)
    for _ in range(3):
        await channel.trigger("Counter||1||ping", "", b"")
    await reminders.stop()
    assert samples_of(metrics, "dapr_runtime_actor_reminders_fired_total") == {
        labels(app_id="orders", actor_type="Counter", success="true"): 2,
        labels(app_id="orders", actor_type="Counter", success="false"): 1}
    await store.close()


async def test_placement_counts_its_reports_and_the_tables_it_reads(tmp_path: Path) -> None:
    metrics = DaprMetrics("orders")
    store = await memory_store(tmp_path)
    state = StateCapability(ComponentSet("state store", {store.name: store}),
                            RuntimeContext(AppConfig(id="orders"), tmp_path))
    config = ActorsConfig(partitions=2, lease_seconds=3.0, poll_seconds=0.05)
    first = LeasedPlacement(state, store.name, "orders", "a:1", config, metrics=metrics)
    second = LeasedPlacement(state, store.name, "orders", "b:1", config)
    listener = ActorTable(lambda t: None, lambda ref: False)
    await first.start({"Counter": EntityConfig()}, listener)
    reports = labels(app_id="orders", actor_type="", operation="send")
    updates = labels(app_id="orders", actor_type="", operation="update")
    assert samples_of(metrics, "dapr_runtime_actor_status_report_total") == {reports: 1}
    assert samples_of(metrics, "dapr_runtime_actor_table_operation_recv_total") == {updates: 1}
    await second.start({"Counter": EntityConfig()}, ActorTable(lambda t: None,
                                                               lambda ref: False))
    await eventually(lambda: samples_of(
        metrics, "dapr_runtime_actor_table_operation_recv_total") == {updates: 2}, within=5)

    async def refused(types: object) -> object:
        raise Unavailable("the store is down", where="state.unavailable")

    first.membership.renew = refused  # type: ignore[assignment,method-assign]
    with pytest.raises(Unavailable):
        await first.update({"Counter": EntityConfig()})
    assert samples_of(metrics, "dapr_runtime_actor_status_report_fail_total") == {
        labels(app_id="orders", actor_type="", operation="send", reason="status"): 1}
    await second.stop()
    await first.stop()
    await store.close()
