"""The runtime: builds components from config, starts them in order, stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pylotto.appchannel.base import RouteRule, TopicSubscription
from pylotto.capabilities.base import AppSettings, ComponentSet, RuntimeContext
from pylotto.capabilities.bindings import BindingsCapability
from pylotto.capabilities.configuration import ConfigurationCapability
from pylotto.capabilities.file import FileCapability
from pylotto.capabilities.hello import HelloCapability
from pylotto.capabilities.invoke import InvokeCapability
from pylotto.capabilities.lock import LockCapability
from pylotto.capabilities.pubsub import PubSubCapability
from pylotto.capabilities.secrets import SecretsCapability
from pylotto.capabilities.sequencer import SequencerCapability
from pylotto.capabilities.state import StateCapability
from pylotto.components.base import Component, ComponentContext
from pylotto.components.secretstores.base import SecretStore
from pylotto.config.model import ComponentSpec, RuntimeConfig
from pylotto.core.errors import ConfigError, PylottoError
from pylotto.core.metadata import decode
from pylotto.core.registry import CAPABILITIES, normalise, resolve
from pylotto.core.resiliency import Resiliency
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing
from pylotto.security.ratelimit import RateLimiter

log = logging.getLogger("pylotto.runtime")

INIT_TIMEOUT_SECONDS = 30.0
PING_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ComponentInfo:
    name: str
    capability: str
    type: str
    """Dapr's spelling: ``state.redis``."""
    version: str
    features: list[str]


@dataclass
class ComponentHealth:
    status: str = "INIT"  # INIT | UP | DOWN
    reason: str = ""
    type: str = ""

    def as_json(self) -> dict[str, Any]:
        details = {"type": self.type, **({"reason": self.reason} if self.reason else {})}
        return {"status": self.status, "details": details}


@dataclass
class ReloadResult:
    """What a hot reload did, by component label (``state.orders``)."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Components that could not start, and why; the old one (if any) keeps serving."""

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.failed)

    def summary(self) -> str:
        parts = [f"{what} {', '.join(labels)}" for what, labels in
                 (("added", self.added), ("changed", self.changed), ("removed", self.removed),
                  ("failed", list(self.failed))) if labels]
        return "; ".join(parts) or "nothing changed"


@dataclass
class Runtime:
    """Owns every component and capability service of one sidecar."""

    config: RuntimeConfig
    components: dict[str, dict[str, Component]] = field(default_factory=dict)
    health: dict[str, ComponentHealth] = field(default_factory=dict)
    started: bool = False
    listening: bool = False
    """Set by the server once every API listener accepts calls (readiness waits for it)."""
    started_at: float = 0.0
    extended_metadata: dict[str, str] = field(default_factory=dict)
    """Attributes the app set (Dapr's SetMetadata), reported back by GetMetadata."""
    shutdown_requested: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by an API call asking the sidecar to stop (Dapr's Shutdown)."""

    def __post_init__(self) -> None:
        self._reload_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self.rate_limiter = RateLimiter(self.config.rate_limits)
        self.metrics = Metrics()
        self.tracing = Tracing(self.config.tracing, self.config.app.id)
        app = self.config.app
        self.context = RuntimeContext(
            app=AppSettings(
                app_id=app.id,
                http_port=app.port,
                grpc_callback_host=app.grpc_callback_host,
                grpc_callback_port=app.grpc_callback_port,
                protocol=app.protocol,
                api_token=app.api_token.get_secret_value(),
            ),
            data_dir=self.config.data_dir,
        )

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Init every component (capability order, then file order), then the capabilities."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        from pylotto.components.pluggable.discovery import log_discovered, use_socket_folder

        use_socket_folder(self.config.pluggable.socket_folder)
        await log_discovered()
        for spec in self.config.components:
            self.health[f"{spec.capability}.{spec.name}"] = ComponentHealth(type=spec.type)
        for capability in CAPABILITIES:
            built = self.components.setdefault(capability, {})
            for spec in self.config.of(capability):
                label = f"{capability}.{spec.name}"
                try:
                    component = await self._build(spec)
                except ConfigError as exc:
                    self.health[label] = ComponentHealth("DOWN", exc.message, spec.type)
                    await self._close_all()
                    raise
                built[spec.name] = component
                self.health[label] = ComponentHealth("UP", type=spec.type)
                log.debug("component %s (%s) ready", label, spec.type)
        self._build_capabilities()
        for service in self._services():
            await service.start()
        self.started = True
        self.started_at = time.time()

    async def _build(self, spec: ComponentSpec) -> Component:
        """A new, initialised component of ``spec``; ConfigError when it cannot start."""
        label = f"{spec.capability}.{spec.name}"
        cls = resolve(spec.capability, spec.type)
        metadata = {**spec.metadata, **await self._read_secrets(spec)}
        settings = decode(cls.Settings, metadata, component=label)
        component = cls(spec.name, settings, ComponentContext(
            app_id=self.context.app_id,
            data_dir=self.config.data_dir,
            logger=logging.getLogger(f"pylotto.component.{label}"),
        ))
        try:
            await asyncio.wait_for(component.init(), INIT_TIMEOUT_SECONDS)
        except (PylottoError, OSError, TimeoutError) as exc:
            with contextlib.suppress(Exception):
                await component.close()
            raise ConfigError(f"component {label} ({spec.type}) failed to start: {exc}") from exc
        return component

    # ---- hot reload ----------------------------------------------------------------------

    async def reload_components(self, specs: list[ComponentSpec]) -> ReloadResult:
        """Make the running components those of ``specs``: start the new and the changed ones,
        swap them in, then close the replaced and removed ones once calls already holding them
        have had :attr:`HotReloadConfig.drain_seconds` to finish. Untouched components are not
        touched. A component that fails to start is reported and the old one (if any) keeps
        serving."""
        async with self._reload_lock:
            result = ReloadResult()
            running = {(s.capability, s.name): s for s in self.config.components}
            wanted = {(s.capability, s.name): s for s in specs}
            applied = dict(running)
            for capability in CAPABILITIES:  # secret stores first: others may read them
                for key, spec in wanted.items():
                    if key[0] != capability or running.get(key) == spec:
                        continue
                    label = f"{capability}.{spec.name}"
                    try:
                        component = await self._build(spec)
                    except ConfigError as exc:
                        log.error("hot reload: %s", exc.message)
                        result.failed[label] = exc.message
                        continue
                    await self._swap(capability, spec.name, component, spec.type)
                    (result.changed if key in running else result.added).append(label)
                    applied[key] = spec
            for capability in reversed(list(CAPABILITIES)):
                for key in [k for k in running if k[0] == capability and k not in wanted]:
                    await self._swap(capability, key[1], None, running[key].type)
                    result.removed.append(f"{capability}.{key[1]}")
                    del applied[key]
            self.config = self.config.model_copy(update={"components": list(applied.values())})
            return result

    async def _swap(self, capability: str, name: str, new: Component | None,
                    type_name: str) -> None:
        """Put ``new`` in place of component ``name`` (None: remove it); the old one closes
        after the drain time."""
        label = f"{capability}.{name}"
        service = self._service_of(capability)
        await service.detach(name)
        table = self.components.setdefault(capability, {})
        old = table.pop(name, None) if new is None else table.get(name)
        if new is None:
            self.health.pop(label, None)
            with contextlib.suppress(KeyError):  # never pinged yet
                self.metrics.component_up.remove(label)
        else:
            table[name] = new
            self.health[label] = ComponentHealth("UP", type=type_name)
            await service.attach(name)
        if old is not None:
            task = asyncio.create_task(self._close_later(label, old))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _close_later(self, label: str, component: Component) -> None:
        try:
            await asyncio.sleep(self.config.hot_reload.drain_seconds)
        finally:
            try:
                await component.close()
            except Exception:
                log.exception("closing the replaced component %s failed", label)
            else:
                log.debug("replaced component %s closed", label)

    def _service_of(self, capability: str) -> Any:
        return {"hello": self.hello, "secretstores": self.secrets,
                "configuration": self.configuration, "state": self.state,
                "bindings": self.bindings, "pubsub": self.pubsub, "file": self.file,
                "lock": self.lock, "sequencer": self.sequencer}[capability]

    async def _read_secrets(self, spec: ComponentSpec) -> dict[str, str]:
        """The metadata values of ``spec`` that come from secret stores (started before)."""
        values = {}
        stores = self.components.get("secretstores", {})
        for key, ref in spec.secrets.items():
            where = f"component {spec.capability}.{spec.name}: {key}"
            store = stores.get(ref.store)
            if not isinstance(store, SecretStore):
                raise ConfigError(f"{where}: secret store {ref.store!r} is not configured")
            try:
                secret = await store.get_secret(ref.name, {})
            except PylottoError as exc:
                raise ConfigError(f"{where}: secret {ref.name!r}: {exc.message}") from exc
            if ref.key not in secret:
                raise ConfigError(f"{where}: secret {ref.name!r} has no key {ref.key!r}")
            values[key] = secret[ref.key]
        return values

    def _set(self, capability: str) -> ComponentSet[Any]:
        return ComponentSet(CAPABILITIES[capability].label, self.components.get(capability, {}))

    def _build_capabilities(self) -> None:
        ctx = self.context
        self.hello = HelloCapability(self._set("hello"), ctx)
        self.secrets = SecretsCapability(self._set("secretstores"), ctx)
        self.configuration = ConfigurationCapability(self._set("configuration"), ctx)
        self.state = StateCapability(self._set("state"), ctx)
        self.bindings = BindingsCapability(self._set("bindings"), ctx)
        self.pubsub = PubSubCapability(self._set("pubsub"), ctx, declarative=[
            TopicSubscription(s.pubsub_name, s.topic, s.metadata,
                              rules=tuple(RouteRule(match, path) for match, path in s.rules),
                              default_path=s.default_path, dead_letter_topic=s.dead_letter_topic)
            for s in self.config.subscriptions])
        self.file = FileCapability(self._set("file"), ctx)
        self.lock = LockCapability(self._set("lock"), ctx)
        self.sequencer = SequencerCapability(self._set("sequencer"), ctx)
        self.resiliency = Resiliency(self.config.resiliency)
        self.invoke = self._invoke_capability()
        for capability in (self.hello, self.secrets, self.configuration, self.state,
                           self.bindings, self.pubsub, self.file, self.lock, self.sequencer):
            capability.resiliency = self.resiliency
            capability.metrics = self.metrics
            capability.tracing = self.tracing
        self.invoke.tracing = self.tracing
        if self.config.wasm is not None:
            from pylotto.wasm.wiring import wasm_functions

            self.invoke.functions = wasm_functions(self)

    def _invoke_capability(self) -> InvokeCapability:
        resolution = self.config.name_resolution
        access = self.config.access_control
        resiliency = self.resiliency
        if resolution is None:
            return InvokeCapability(self.context, access=access, resiliency=resiliency,
                                    rate_limiter=self.rate_limiter)
        from pylotto.appchannel.sidecars import SidecarChannel
        from pylotto.resolution.base import Resolver

        resolver: Resolver
        if resolution.type == "redis":
            from pylotto.resolution.redis import RedisResolver

            resolver = RedisResolver(resolution.metadata)
        elif resolution.type == "dns":
            from pylotto.resolution.dns import DnsResolver

            resolver = DnsResolver(resolution.metadata)
        else:
            from pylotto.resolution.static import StaticResolver

            resolver = StaticResolver(resolution.metadata)
        listen = self.config.listen
        mtls = self.config.mtls
        advertise = resolution.advertise or (listen.internal_grpc if mtls else "") or \
            listen.dapr_grpc or listen.layotto_grpc
        return InvokeCapability(self.context, sidecars=SidecarChannel(
                                    resolver, credentials=mtls.read() if mtls else None),
                                resolver=resolver, advertise=advertise, access=access,
                                resiliency=resiliency, rate_limiter=self.rate_limiter)

    def _services(self) -> list[Any]:
        return [self.hello, self.secrets, self.configuration, self.state, self.bindings,
                self.pubsub, self.file, self.lock, self.sequencer, self.invoke]

    async def stop(self) -> None:
        """Stop capabilities (subscriptions first), then close components in reverse order,
        then export the spans still buffered."""
        await self.stop_services()
        await self._close_all()
        await asyncio.to_thread(self.tracing.shutdown)

    async def stop_services(self) -> None:
        """End background work (subscriptions, streams); components stay open for calls."""
        if self.started:
            for service in reversed(self._services()):
                try:
                    await service.stop()
                except Exception:
                    log.exception("stopping %s failed", type(service).__name__)
        self.started = False

    async def _close_all(self) -> None:
        retiring = list(self._retiring)
        for task in retiring:  # components replaced by a reload: close them now
            task.cancel()
        await asyncio.gather(*retiring, return_exceptions=True)
        for capability in reversed(list(CAPABILITIES)):
            for name, component in reversed(list(self.components.get(capability, {}).items())):
                try:
                    await component.close()
                except Exception:
                    log.exception("closing %s.%s failed", capability, name)
                label = f"{capability}.{name}"
                self.health[label] = ComponentHealth("DOWN", "stopped", self.health[label].type)
            self.components[capability] = {}

    # ---- introspection -------------------------------------------------------------------

    def describe_components(self) -> list[ComponentInfo]:
        """Every running component, with its Dapr-style type and declared features."""
        infos = []
        for capability, components in self.components.items():
            prefix = CAPABILITIES[capability].dapr_prefix
            for name, component in components.items():
                spec = next(s for s in self.config.of(capability) if s.name == name)
                infos.append(ComponentInfo(
                    name=name, capability=capability,
                    type=prefix + normalise(capability, spec.type), version=spec.version,
                    features=sorted(str(f) for f in component.features),
                ))
        return infos

    # ---- health --------------------------------------------------------------------------

    async def check_readiness(self) -> dict[str, ComponentHealth]:
        """Ping every running component; a failed or slow ping marks it DOWN."""

        async def ping(label: str, component: Component) -> None:
            try:
                await asyncio.wait_for(component.ping(), PING_TIMEOUT_SECONDS)
            except (PylottoError, OSError, TimeoutError) as exc:
                self.health[label] = ComponentHealth("DOWN", str(exc) or type(exc).__name__,
                                                     self.health[label].type)
                self.metrics.component_up.labels(label).set(0)
            else:
                self.health[label] = ComponentHealth("UP", type=self.health[label].type)
                self.metrics.component_up.labels(label).set(1)

        await asyncio.gather(
            *(
                ping(f"{cap}.{name}", comp)
                for cap, comps in self.components.items()
                for name, comp in comps.items()
            )
        )
        return dict(self.health)
