"""The record of capability services: one field per capability, found by registry name."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from pylotto.capabilities.actors.disabled import DisabledActors
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.invoke import InvokeCapability
from pylotto.capabilities.pubsub import PubSubCapability
from pylotto.capabilities.scheduler import SchedulerCapability
from pylotto.capabilities.scheduler.delay_queue import DelayQueue
from pylotto.capabilities.services import CapabilityServices
from pylotto.capabilities.state import StateCapability
from pylotto.capabilities.workflows import DisabledWorkflows
from pylotto.config.model import AppConfig, embedded_default
from pylotto.core.registry import CAPABILITIES
from pylotto.plugins import PluginContext
from pylotto.process.runtime import Runtime


def test_every_registry_capability_has_its_service() -> None:
    services = Runtime(embedded_default()).services
    for name in CAPABILITIES:
        service = services.serving(name)
        assert service.components.label == CAPABILITIES[name].label  # type: ignore[attr-defined]
    assert services.serving("secretstores") is services.secrets
    with pytest.raises(KeyError):
        services.serving("nope")


def test_start_order_is_the_field_order_and_ends_with_invoke_actors_workflows() -> None:
    services = Runtime(embedded_default()).services
    order = list(services.in_start_order())
    assert order == [getattr(services, f.name) for f in fields(services)]
    assert order[0] is services.hello
    assert order[-3:] == [services.invoke, services.actors, services.workflows]


def test_capabilities_get_the_runtime_policies_at_construction() -> None:
    runtime = Runtime(embedded_default())
    services = runtime.services
    assert services.state.metrics is runtime.metrics
    assert services.state.tracing is runtime.tracing
    assert services.pubsub.resiliency is services.state.resiliency
    assert services.invoke.tracing is runtime.tracing


def test_build_wants_the_services_without_components(tmp_path: Path) -> None:
    context = RuntimeContext(AppConfig(app_id="a"), tmp_path)
    tables: dict[str, dict[str, object]] = {name: {} for name in CAPABILITIES}
    scheduler = SchedulerCapability(
        StateCapability(ComponentSet("state store", {}), context), context)
    with pytest.raises(TypeError, match="scheduler"):
        CapabilityServices.build(tables, context, {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="delay_queue"):
        CapabilityServices.build(tables, context, {},  # type: ignore[arg-type]
                                 scheduler=scheduler)
    delay_queue = DelayQueue(scheduler, PubSubCapability(ComponentSet("pubsub", {}), context))
    with pytest.raises(TypeError, match="invoke"):
        CapabilityServices.build(tables, context, {},  # type: ignore[arg-type]
                                 scheduler=scheduler, delay_queue=delay_queue)
    with pytest.raises(TypeError, match="actors"):
        CapabilityServices.build(tables, context, {},  # type: ignore[arg-type]
                                 scheduler=scheduler, delay_queue=delay_queue,
                                 invoke=InvokeCapability(context))
    with pytest.raises(TypeError, match="workflows"):
        CapabilityServices.build(tables, context, {},  # type: ignore[arg-type]
                                 scheduler=scheduler, delay_queue=delay_queue,
                                 invoke=InvokeCapability(context), actors=DisabledActors())
    with pytest.raises(TypeError, match="unknown"):
        CapabilityServices.build(tables, context, {},  # type: ignore[arg-type]
                                 invoke=InvokeCapability(context), scheduler=scheduler,
                                 delay_queue=delay_queue, actors=DisabledActors(),
                                 workflows=DisabledWorkflows(), nope=object())


def test_a_plugin_context_has_every_service() -> None:
    services = Runtime(embedded_default()).services
    context = PluginContext.of(services, "p")
    for f in fields(services):
        assert getattr(context, f.name) is getattr(services, f.name)
    assert context.app is services.context.app
