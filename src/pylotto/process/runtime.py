"""The runtime: builds components from config, starts them in order, stops them in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field

from pylotto.appchannel.select import app_gate
from pylotto.capabilities.base import RuntimeContext
from pylotto.capabilities.services import CapabilityServices
from pylotto.capabilities.status import (
    ComponentHealth,
    ComponentInfo,
    RuntimeStatus,
    reported_features,
)
from pylotto.components.base import Component, ComponentContext
from pylotto.components.secretstores.base import SecretStore
from pylotto.config.model import ComponentSpec, RuntimeConfig
from pylotto.core.errors import ComponentNotFound, ConfigError, PylottoError
from pylotto.core.metadata import decode
from pylotto.core.registry import CAPABILITIES, normalise, resolve
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing
from pylotto.process.assembly import build_services
from pylotto.security.ratelimit import RateLimiter

log = logging.getLogger("pylotto.runtime")

INIT_TIMEOUT_SECONDS = 30.0
PING_TIMEOUT_SECONDS = 2.0


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
    """Owns every component of one sidecar: starts them in order, swaps them on hot reload,
    pings them for readiness, stops them in reverse. What the APIs call is :attr:`services`
    (built once, with the runtime); what they report is :attr:`status`."""

    config: RuntimeConfig
    components: dict[str, dict[str, Component]] = field(default_factory=dict)
    """Registry capability → name → component. Each table is created once, here, and only
    changed in place: the capability services hold them."""
    health: dict[str, ComponentHealth] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = self.config.model_copy(update={
            "components": self.allowed(self.config.components)})
        self._reload_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        for capability in CAPABILITIES:
            self.components.setdefault(capability, {})
        self.rate_limiter = RateLimiter(self.config.rate_limits)
        self.metrics = Metrics(self.config.app.id, os.environ.get("NAMESPACE", ""))
        self.metrics.log_api_calls = self.config.api_logging
        self.tracing = Tracing(self.config.tracing, self.config.app.id)
        self.context = RuntimeContext(app=self.config.app, data_dir=self.config.data_dir)
        self.app_gate = app_gate(self.config.app)
        """The app's health and concurrency limit (the health prober sets it)."""
        self.services: CapabilityServices = build_services(
            self.config, self.context, self.components, metrics=self.metrics,
            tracing=self.tracing, rate_limiter=self.rate_limiter, gate=self.app_gate)
        self.status = RuntimeStatus(self, self.services.pubsub, self.services.actors,
                                    self.services.workflows)

    def allowed(self, specs: list[ComponentSpec]) -> list[ComponentSpec]:
        """``specs`` without the components a Dapr Configuration's ``components.deny``
        names (by Dapr's full type: ``in-memory`` of state is ``state.in-memory``)."""
        dapr = self.config.dapr
        if dapr is None:
            return specs
        return [s for s in specs if dapr.allows_component(s.name, dapr_type(s), s.version)]

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
            built = self.components[capability]
            for spec in self.config.of(capability):
                label = f"{capability}.{spec.name}"
                try:
                    component = await self._build(spec)
                except ConfigError as exc:
                    self.health[label] = ComponentHealth("DOWN", exc.message, spec.type)
                    self.metrics.dapr.component_failed(dapr_type(spec), "init", spec.name)
                    await self._close_all()
                    raise
                built[spec.name] = component
                self.health[label] = ComponentHealth("UP", type=spec.type)
                self.metrics.dapr.component_loaded(dapr_type(spec))
                log.info("Component loaded: %s (%s/%s)", spec.name, dapr_type(spec),
                         spec.version or "v1")
        for service in self.services.in_start_order():
            await service.start()
        self.status.started = True
        self.status.started_at = time.time()

    async def _build(self, spec: ComponentSpec) -> Component:
        """A new, initialised component of ``spec``; ConfigError when it cannot start."""
        label = f"{spec.capability}.{spec.name}"
        cls = resolve(spec.capability, spec.type, spec.version)
        metadata = {**spec.metadata, **await self._read_secrets(spec)}
        settings = decode(cls.Settings, metadata, component=label)
        component = cls(spec.name, settings, ComponentContext(
            app_id=self.context.app_id,
            data_dir=self.config.data_dir,
            logger=logging.getLogger(f"pylotto.component.{label}"),
        ))
        component.type_name = dapr_type(spec)
        try:
            async with asyncio.timeout(INIT_TIMEOUT_SECONDS):
                await component.init()
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
        specs = self.allowed(specs)
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

    async def reconfigure(self, capability: str, name: str,
                          metadata: dict[str, str]) -> bool:
        """Give the running component ``capability.name`` ``metadata`` as its whole metadata,
        as a hot reload changes a component (Layotto's ``ApplyConfiguration``): the new
        metadata is decoded first, a new instance started next to the old one and swapped in,
        the old one closed after the drain time. ComponentNotFound when no such component
        runs; ConfigError when the metadata does not validate or the component does not start
        with it (nothing changes: the old one keeps serving). False when the metadata is the
        running one already (nothing to do)."""
        async with self._reload_lock:
            specs = self.config.components
            index = next((i for i, s in enumerate(specs)
                          if s.capability == capability and s.name == name), None)
            if index is None:
                raise ComponentNotFound(f"no component {capability}.{name} is running",
                                        where=capability, name=name)
            spec = specs[index].model_copy(update={"metadata": dict(metadata)})
            if spec == specs[index]:
                return False
            component = await self._build(spec)
            await self._swap(capability, name, component, spec.type)
            self.config = self.config.model_copy(update={
                "components": [*specs[:index], spec, *specs[index + 1:]]})
            return True

    async def _swap(self, capability: str, name: str, new: Component | None,
                    type_name: str) -> None:
        """Put ``new`` in place of component ``name`` (None: remove it); the old one closes
        after the drain time."""
        label = f"{capability}.{name}"
        service = self.services.serving(capability)
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
                if ref.optional:
                    log.warning("%s: secret %r has no key %r; nothing injected", where,
                                ref.name, ref.key)
                    continue
                raise ConfigError(f"{where}: secret {ref.name!r} has no key {ref.key!r}")
            values[key] = secret[ref.key]
        return values

    async def stop(self) -> None:
        """Stop capabilities (subscriptions first), then close components in reverse order,
        then export the spans still buffered."""
        await self.stop_services()
        await self._close_all()
        await asyncio.to_thread(self.tracing.shutdown)

    async def stop_services(self) -> None:
        """End background work (subscriptions, streams); components stay open for calls."""
        if self.status.started:
            for service in reversed(list(self.services.in_start_order())):
                try:
                    await service.stop()
                except Exception:
                    log.exception("stopping %s failed", type(service).__name__)
        self.status.started = False

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
            self.components[capability].clear()  # in place: the services hold this table

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
                    features=reported_features(capability, component),
                ))
        return infos

    # ---- health --------------------------------------------------------------------------

    async def check_readiness(self) -> dict[str, ComponentHealth]:
        """Ping every running component; a failed or slow ping marks it DOWN."""

        async def ping(label: str, component: Component) -> None:
            try:
                async with asyncio.timeout(PING_TIMEOUT_SECONDS):
                    await component.ping()
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


def dapr_type(spec: ComponentSpec) -> str:
    """``spec``'s type as Dapr spells it, with its capability's prefix (``in-memory`` of
    state is ``state.in-memory``)."""
    prefix = CAPABILITIES[spec.capability].dapr_prefix
    return spec.type if spec.type.startswith(prefix) else prefix + spec.type
