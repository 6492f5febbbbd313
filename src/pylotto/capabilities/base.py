"""What every capability shares: the set of its components and the runtime context."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypedDict, TypeVar

from pylotto.components.base import Component
from pylotto.config.model import AppConfig
from pylotto.core.errors import Lookup, PylottoError, lookup_error
from pylotto.core.resiliency import Resiliency
from pylotto.observability import span_attributes
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing

C = TypeVar("C", bound=Component)
T = TypeVar("T")


@dataclass(frozen=True)
class RuntimeContext:
    """What every capability may know about the sidecar: its app (the configuration's own
    record, so there is no second copy to keep in step) and its data folder."""

    app: AppConfig
    data_dir: Path

    @property
    def app_id(self) -> str:
        return self.app.id


class Policies(TypedDict, total=False):
    """The keyword arguments every capability takes beside its components and context (a
    subclass with its own ``__init__`` passes them on as ``**policies``)."""

    resiliency: Resiliency | None
    metrics: Metrics | None
    tracing: Tracing | None


class ComponentSet(Generic[C]):
    """The components of one capability, looked up by name with the Layotto error rules."""

    def __init__(self, label: str, components: dict[str, C], capability: str = "") -> None:
        """``capability``: the registry name the lookup errors say they arose in."""
        self.label = label
        self._components = components
        self.capability = capability

    def get(self, name: str, operation: str = "") -> C:
        """The component ``name``; else the lookup error, as Layotto answers it in this
        capability (``operation``: where Layotto's text differs by operation)."""
        if not self._components:
            raise self.lookup_error("not_configured", name, operation)
        if not name:
            raise self.lookup_error("empty", name, operation)
        try:
            return self._components[name]
        except KeyError:
            raise self.lookup_error("not_found", name, operation) from None

    def lookup_error(self, lookup: Lookup, name: str, operation: str = "") -> PylottoError:
        return lookup_error(self.capability, lookup, self.label, name, operation)

    def find(self, name: str) -> C | None:
        """The component ``name``, or None (no error)."""
        return self._components.get(name)

    def names(self) -> list[str]:
        return list(self._components)

    def items(self) -> Iterator[tuple[str, C]]:
        return iter(self._components.items())

    def __len__(self) -> int:
        return len(self._components)


class Capability(Generic[C]):
    """Base of the capability services.

    ``start`` runs once every component is up; ``stop`` runs before components close.
    """

    def __init__(self, components: ComponentSet[C], context: RuntimeContext, *,
                 resiliency: Resiliency | None = None, metrics: Metrics | None = None,
                 tracing: Tracing | None = None) -> None:
        """``resiliency``, ``metrics``, ``tracing``: the runtime's, given at construction so a
        capability is complete once built (none: no policies, no metrics, no spans — what
        unit tests use)."""
        self.components = components
        self.context = context
        self.resiliency = resiliency if resiliency is not None else Resiliency(None)
        """The policies component calls go through (``call``)."""
        self.metrics = metrics
        self.tracing = tracing if tracing is not None else Tracing(None, "")

    async def call(self, component_name: str, attempt: Callable[[], Awaitable[T]],
                   operation: str = "") -> T:
        """A call to a component, under the resiliency policies of its name, counted in the
        metrics (``operation``: daprd's operation label — ``get``, ``set``, ``bulk_get``...)."""
        traced = self.tracing.enabled
        if self.metrics is None and not traced:
            return await self.resiliency.call_component(component_name, attempt)
        started = time.perf_counter()
        outcome = "ok"
        try:
            if not traced:
                return await self.resiliency.call_component(component_name, attempt)
            component = self.components.find(component_name)
            with self.tracing.child(
                    f"{self.components.label} {component_name}",
                    "producer" if self.components.capability == "pubsub" else "client",
                    **span_attributes.component_call(
                        self.components.capability,
                        component.type_name if component is not None else "",
                        component_name, operation)):
                return await self.resiliency.call_component(component_name, attempt)
        except PylottoError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            if self.metrics is not None:
                self.metrics.component_call(
                    f"{self.components.label} {component_name}", outcome,
                    time.perf_counter() - started, capability=self.components.capability,
                    name=component_name, operation=operation)

    async def start(self) -> None:
        """Begin background work (subscriptions...). Called once all components are up."""

    async def stop(self) -> None:
        """End background work. Called before components are closed."""

    async def detach(self, component_name: str) -> None:
        """Hot reload: component ``component_name`` is about to be replaced or removed; end
        the background work that holds it."""

    async def attach(self, component_name: str) -> None:
        """Hot reload: component ``component_name`` is new or was replaced; begin its
        background work."""
