"""Building a sidecar's :class:`CapabilityServices` from its configuration: the app channels,
the policies every capability is constructed with, name resolution and the WASM functions of
service invocation, declarative subscriptions of pub/sub.

Here (in the process layer) rather than in the capability layer because it chooses concrete
resolvers and loads the WASM runner, which itself imports capabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pylotto.appchannel.base import BulkSubscribe, RouteRule, TopicSubscription
from pylotto.appchannel.bindings import BindingChannel, GrpcBindingChannel, HttpBindingChannel
from pylotto.appchannel.gate import AppGate
from pylotto.appchannel.jobs import GrpcJobChannel, HttpJobChannel, JobChannel
from pylotto.appchannel.select import AppChannels, app_channels
from pylotto.capabilities.actors.api import Actors, Forwarder, Placement
from pylotto.capabilities.actors.disabled import DisabledActors
from pylotto.capabilities.actors.hosting import AttachingActors
from pylotto.capabilities.base import ComponentSet, Policies, RuntimeContext
from pylotto.capabilities.bindings import BindingsCapability
from pylotto.capabilities.invoke import Functions, InvokeCapability
from pylotto.capabilities.pubsub import PubSubCapability
from pylotto.capabilities.scheduler import SchedulerCapability
from pylotto.capabilities.scheduler.delay_queue import TARGET as PUBLISH_TARGET
from pylotto.capabilities.scheduler.delay_queue import DelayQueue, PublishTarget
from pylotto.capabilities.secrets import SecretsCapability
from pylotto.capabilities.services import CapabilityServices
from pylotto.capabilities.state import StateCapability
from pylotto.capabilities.workflows import Workflows
from pylotto.components.base import Component
from pylotto.config.model import RuntimeConfig
from pylotto.core.errors import ConfigError
from pylotto.core.registry import CAPABILITIES
from pylotto.core.resiliency import ACTOR_NOT_FOUND_RETRIES, Resiliency, RetryPolicy
from pylotto.observability.dapr_metrics import DaprMetrics
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing
from pylotto.security.ratelimit import RateLimiter
from pylotto.security.secret_scopes import SecretScopes

if TYPE_CHECKING:
    from pylotto.resolution.base import Resolver
    from pylotto.security.access import AccessCheck


def build_services(config: RuntimeConfig, context: RuntimeContext,
                   tables: Mapping[str, dict[str, Component]], *, metrics: Metrics,
                   tracing: Tracing, rate_limiter: RateLimiter,
                   gate: AppGate | None = None) -> CapabilityServices:
    """Every capability service of the sidecar ``config`` describes, over ``tables``; calls
    to the app pass ``gate`` (its health and concurrency limit)."""
    resiliency = Resiliency(config.resiliency)
    policies = Policies(resiliency=resiliency, metrics=metrics, tracing=tracing)
    channels = app_channels(context.app, gate, metrics.dapr)
    services: CapabilityServices | None = None

    def current() -> CapabilityServices:
        assert services is not None  # functions run once the sidecar serves
        return services

    pubsub = PubSubCapability(
        ComponentSet[Any](CAPABILITIES["pubsub"].label, tables["pubsub"], "pubsub"), context,
        app_channel=channels.pubsub, declarative=declarative_subscriptions(config),
        **policies)
    invoke = _invoke(config, context, channels, resiliency, tracing, rate_limiter,
                     _functions(config, current))
    secrets = SecretsCapability(
        ComponentSet[Any](CAPABILITIES["secretstores"].label, tables["secretstores"],
                          "secretstores"), context,
        scopes=SecretScopes(config.secret_scopes), **policies)
    state = StateCapability(
        ComponentSet[Any](CAPABILITIES["state"].label, tables["state"], "state"), context,
        **policies)
    settings = config.scheduler
    scheduler = SchedulerCapability(state, context, store_name=settings.state_store or None,
                                    channel=job_channel(channels), poll=settings.poll_seconds,
                                    lease=settings.lease_seconds,
                                    targets={PUBLISH_TARGET: PublishTarget(pubsub)})
    bindings = BindingsCapability(
        ComponentSet[Any](CAPABILITIES["bindings"].label, tables["bindings"], "bindings"),
        context, channel=binding_channel(channels), **policies)
    services = CapabilityServices.build(tables, context, policies, pubsub=pubsub, invoke=invoke,
                                        secrets=secrets, state=state, scheduler=scheduler,
                                        bindings=bindings,
                                        delay_queue=DelayQueue(scheduler, pubsub),
                                        actors=(actors := build_actors(config, context, state,
                                                                       channels, metrics)),
                                        workflows=build_workflows(actors, context.app_id))
    return services


ACTOR_STORE_KEY = "actorstatestore"
"""The component metadata key (any case) marking Dapr's actor state store."""


def actor_state_store(config: RuntimeConfig) -> str:
    """The name of the actor state store ("": none): ``actors.state_store``, or the one state
    store whose metadata says ``actorStateStore: "true"``. Two of them (marked, or marked and
    named) are a start-up error, as daprd's ``detected duplicate actor state store``."""
    states = [spec for spec in config.components if spec.capability == "state"]
    marked = [spec.name for spec in states
              if any(key.lower() == ACTOR_STORE_KEY and str(value).strip().lower() == "true"
                     for key, value in spec.metadata.items())]
    named = config.actors.state_store
    if named and named not in {spec.name for spec in states}:
        raise ConfigError(f"actors.state_store: no state store named {named!r}")
    stores = list(dict.fromkeys([*([named] if named else []), *marked]))
    if len(stores) > 1:
        raise ConfigError(f"detected duplicate actor state store: {stores[0]} and {stores[1]}")
    return stores[0] if stores else ""


def build_actors(config: RuntimeConfig, context: RuntimeContext, state: StateCapability,
                 channels: AppChannels, metrics: Metrics) -> Actors:
    """Dapr's actor runtime over the actor state store (none: :class:`DisabledActors`), with
    in-memory timers and reminders on a scheduler over the same store, and an HTTP app's
    ``/dapr/config`` types attached once it answers; a gRPC app attaches its own through
    ``SubscribeActorEventsAlpha1``."""
    store = actor_state_store(config)
    if not store:
        return DisabledActors()
    from pylotto.appchannel.actors import HttpActorHost
    from pylotto.capabilities.actors import ActorsCapability, ActorState
    from pylotto.capabilities.actors.reminders import SchedulerReminders
    from pylotto.capabilities.actors.timers import MemoryTimers

    dapr = metrics.dapr
    placement, forwarder = actor_placement(config, context, state, store, dapr)
    reminders = SchedulerReminders(state, store, app_id=context.app_id,
                                   poll=config.scheduler.poll_seconds,
                                   lease=config.scheduler.lease_seconds, metrics=dapr)
    runtime = ActorsCapability(ActorState(state, store, context.app_id), config.actors,
                               context.app_id, placement=placement, forwarder=forwarder,
                               timers=MemoryTimers(metrics=dapr), reminders=reminders,
                               retry_policy=actor_lookup_retries(config), metrics=dapr)
    host = None
    if channels.invoke_http is not None and not context.app.is_grpc:
        host = HttpActorHost(channels.invoke_http, context.app_id)
    return AttachingActors(runtime, host)


def actor_lookup_retries(config: RuntimeConfig) -> RetryPolicy | None:
    """The user's ``DaprBuiltInActorNotFoundRetries`` retry policy (None: daprd's built-in 5 x
    1 s stays)."""
    if config.resiliency is None:
        return None
    return config.resiliency.policies.retries.get(ACTOR_NOT_FOUND_RETRIES)


def build_workflows(actors: Actors, app_id: str) -> Workflows:
    """Dapr workflows over the actor runtime (as daprd, they need the actor state store;
    without one, :class:`DisabledWorkflows` answers daprd's "no actor runtime" error)."""
    from pylotto.capabilities.actors import ActorsCapability
    from pylotto.capabilities.workflows import DisabledWorkflows, WorkflowsCapability

    inner = actors.inner if isinstance(actors, AttachingActors) else actors
    if not isinstance(inner, ActorsCapability) or inner.store is None:
        return DisabledWorkflows()
    return WorkflowsCapability(inner, app_id)


def actor_placement(config: RuntimeConfig, context: RuntimeContext, state: StateCapability,
                    store: str, metrics: DaprMetrics | None = None
                    ) -> tuple[Placement | None, Forwarder | None]:
    """Placement across the sidecars of the app id (leases in the actor state store, calls
    forwarded to this sidecar's advertised gRPC address), unless the store is the in-memory
    one no other sidecar sees: then (None, None), the runtime's one-sidecar default."""
    from pylotto.components.state.memory import MemoryStateStore
    from pylotto.core.registry import resolve

    spec = next((s for s in config.components if s.capability == "state" and s.name == store),
                None)
    if spec is None or issubclass(resolve("state", spec.type), MemoryStateStore):
        return None, None
    from pylotto.capabilities.actors.forwarding import SidecarForwarder
    from pylotto.capabilities.actors.placement import LeasedPlacement

    mtls = config.mtls
    return (LeasedPlacement(state, store, context.app_id, advertised(config), config.actors,
                            metrics=metrics),
            SidecarForwarder(mtls.read() if mtls else None))


def access_check(config: RuntimeConfig) -> AccessCheck | None:
    """The access list of incoming invocations: a Dapr Configuration's ``accessControl``
    (Dapr's rules), else pylotto.yaml's ``access_control``; not both."""
    dapr = config.dapr.access_control if config.dapr is not None else None
    if dapr is not None and config.access_control is not None:
        raise ConfigError("both access_control (pylotto.yaml) and a Dapr Configuration's "
                          "accessControl are given; keep one")
    if dapr is not None:
        return dapr.compiled(http=not config.app.is_grpc)
    return config.access_control


def job_channel(channels: AppChannels) -> JobChannel | None:
    """Where triggered jobs go: the app's HTTP or Dapr gRPC server (None: no app)."""
    if channels.invoke_http is not None:
        return HttpJobChannel(channels.invoke_http)
    if channels.invoke_grpc is not None:
        return GrpcJobChannel(channels.invoke_grpc)
    return None


def binding_channel(channels: AppChannels) -> BindingChannel | None:
    """Where the events of input bindings go: the app's HTTP or Dapr gRPC server (None: no
    app, or only a Layotto AppCallback, which has no input bindings)."""
    if channels.invoke_http is not None:
        return HttpBindingChannel(channels.invoke_http)
    if channels.invoke_grpc is not None:
        return GrpcBindingChannel(channels.invoke_grpc)
    return None


def declarative_subscriptions(config: RuntimeConfig) -> list[TopicSubscription]:
    """The ``kind: Subscription`` manifests, as pub/sub makes them at start."""
    return [TopicSubscription(s.pubsub_name, s.topic, s.metadata,
                              rules=tuple(RouteRule(match, path) for match, path in s.rules),
                              default_path=s.default_path, dead_letter_topic=s.dead_letter_topic,
                              bulk=None if s.bulk_subscribe is None else BulkSubscribe(
                                  *s.bulk_subscribe))
            for s in config.subscriptions]


def _functions(config: RuntimeConfig,
               services: Callable[[], CapabilityServices]) -> Functions | None:
    if config.wasm is None:
        return None
    from pylotto.wasm.wiring import wasm_functions

    return wasm_functions(config.wasm, config.source, services)


def advertised(config: RuntimeConfig) -> str:
    """The address other sidecars call this one at (announced to name resolution, recorded
    by actor placement): the port sidecars call — the internal mTLS one with ``mtls``, else
    the Dapr gRPC API, else the Layotto one — on the host
    :func:`pylotto.resolution.advertise.advertised_address` decides."""
    from pylotto.resolution.advertise import advertised_address

    listen, resolution = config.listen, config.name_resolution
    return advertised_address(
        (listen.internal_grpc if config.mtls else "") or listen.dapr_grpc or listen.layotto_grpc,
        explicit=resolution.advertise if resolution else "")


def _invoke(config: RuntimeConfig, context: RuntimeContext, channels: AppChannels,
            resiliency: Resiliency, tracing: Tracing, rate_limiter: RateLimiter,
            functions: Functions | None) -> InvokeCapability:
    resolution = config.name_resolution
    access = access_check(config)
    if resolution is None:
        return InvokeCapability(context, channels=channels, access=access,
                                resiliency=resiliency, rate_limiter=rate_limiter,
                                tracing=tracing, functions=functions)
    from pylotto.appchannel.sidecars import SidecarChannel

    listen = config.listen
    mtls = config.mtls
    resolver: Resolver
    if resolution.type == "redis":
        from pylotto.resolution.redis import RedisResolver

        resolver = RedisResolver(resolution.metadata)
    elif resolution.type == "dns":
        from pylotto.resolution.dns import DnsResolver

        resolver = DnsResolver(resolution.metadata)
    elif resolution.type == "kubernetes":
        from pylotto.resolution.kubernetes import KubernetesResolver

        # as daprd: the peers' port is this sidecar's own (every pod is injected alike)
        _, _, own_port = ((listen.internal_grpc if mtls else "") or listen.dapr_grpc
                          or listen.layotto_grpc).rpartition(":")
        resolver = KubernetesResolver(
            resolution.metadata, default_port=int(own_port) if own_port.isdigit() else 50001)
    elif resolution.type == "mdns":
        from pylotto.resolution.mdns import MdnsResolver

        resolver = MdnsResolver(resolution.metadata)
    else:
        from pylotto.resolution.static import StaticResolver

        resolver = StaticResolver(resolution.metadata)
    # only a registry announces the address (a static table or DNS is written by the operator)
    advertise = advertised(config) if resolver.announces and context.app_id else ""
    return InvokeCapability(context, channels=channels, sidecars=SidecarChannel(
                                resolver, credentials=mtls.read() if mtls else None),
                            resolver=resolver, advertise=advertise, access=access,
                            resiliency=resiliency, rate_limiter=rate_limiter,
                            tracing=tracing, functions=functions)
