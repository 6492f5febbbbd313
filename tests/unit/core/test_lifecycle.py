"""Layotto's Lifecycle servicer over a real runtime on embedded components: which kinds it
knows, the swap of ``Runtime.reconfigure`` (a new instance, the spec updated, nothing changed
when refused), and the refusal under ``--workers``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from pylotto.config.model import embedded_default
from pylotto.core.errors import (
    ComponentNotFound,
    ConfigError,
    InvalidArgument,
    PylottoError,
    Unsupported,
    grpc_code,
)
from pylotto.facades.layotto.lifecycle import LifecycleServicer, capability_of
from pylotto.process.runtime import Runtime
from pylotto.proto.layotto import lifecycle_pb2


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    config = embedded_default().model_copy(update={"data_dir": tmp_path})
    running = Runtime(config)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def request(kind: str, name: str, **metadata: str) -> lifecycle_pb2.DynamicConfiguration:
    return lifecycle_pb2.DynamicConfiguration(component_config=lifecycle_pb2.ComponentConfig(
        kind=kind, name=name, metadata=metadata))


def test_kinds_are_layottos_sections_and_pylottos_capabilities() -> None:
    assert capability_of("pub_subs") == capability_of("pubsub") == "pubsub"
    assert capability_of("hellos") == capability_of("hello") == "hello"
    assert capability_of("config_store") == "configuration"
    assert capability_of("secret_store") == "secretstores"
    assert capability_of("state") == "state"
    assert capability_of("states") is None


async def test_reconfigure_swaps_in_a_new_instance(runtime: Runtime) -> None:
    old = runtime.components["state"]["sqlite"]
    servicer = LifecycleServicer(runtime.reconfigure)
    await servicer.ApplyConfiguration(request("state", "sqlite", tableName="other"), None)
    new = runtime.components["state"]["sqlite"]
    assert new is not old
    [spec] = [s for s in runtime.config.components if (s.capability, s.name) ==
              ("state", "sqlite")]
    assert spec.metadata == {"tableName": "other"}
    # the same again: nothing to do
    assert not await runtime.reconfigure("state", "sqlite", {"tableName": "other"})
    assert runtime.components["state"]["sqlite"] is new


async def test_a_refused_configuration_changes_nothing(runtime: Runtime) -> None:
    old = runtime.components["state"]["sqlite"]
    before = list(runtime.config.components)
    servicer = LifecycleServicer(runtime.reconfigure)
    with pytest.raises(ConfigError) as refused:
        await servicer.ApplyConfiguration(request("state", "sqlite", tableName="no-dash"), None)
    assert grpc_code(refused.value) == grpc.StatusCode.UNKNOWN  # Layotto: a plain error
    assert "tableName" in refused.value.message
    assert runtime.components["state"]["sqlite"] is old
    assert runtime.config.components == before


@pytest.mark.parametrize(("given", "kind", "text"), [
    (request("state", "nope", a="b"), ComponentNotFound,
     "component not found. kind: state , name: nope"),
    (request("", "sqlite", a="b"), InvalidArgument, "field kind is not configured"),
    (request("state", "", a="b"), InvalidArgument, "field name is not configured"),
    (request("state", "sqlite"), InvalidArgument, "field metadata is not configured"),
    (lifecycle_pb2.DynamicConfiguration(), InvalidArgument, "field kind is not configured"),
])
async def test_argument_errors_are_layottos(runtime: Runtime,
                                            given: lifecycle_pb2.DynamicConfiguration,
                                            kind: type[PylottoError], text: str) -> None:
    with pytest.raises(kind) as refused:
        await LifecycleServicer(runtime.reconfigure).ApplyConfiguration(given, None)
    assert refused.value.message == text
    assert grpc_code(refused.value) == grpc.StatusCode.INVALID_ARGUMENT


async def test_refused_under_workers(runtime: Runtime) -> None:
    old = runtime.components["hello"]["quick_start_demo"]
    servicer = LifecycleServicer(runtime.reconfigure, workers=True)
    with pytest.raises(Unsupported, match="one worker process"):
        await servicer.ApplyConfiguration(request("hellos", "quick_start_demo", hello="x"), None)
    assert runtime.components["hello"]["quick_start_demo"] is old


async def test_refused_when_hot_reload_is_off(runtime: Runtime) -> None:
    old = runtime.components["hello"]["quick_start_demo"]
    servicer = LifecycleServicer(runtime.reconfigure, hot_reload=False)
    with pytest.raises(Unsupported, match="hot reload is off") as refused:
        await servicer.ApplyConfiguration(request("hellos", "quick_start_demo", hello="x"), None)
    assert grpc_code(refused.value) == grpc.StatusCode.UNIMPLEMENTED
    assert runtime.components["hello"]["quick_start_demo"] is old
