"""What every capability shares: the set of its components and the runtime context."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pylotto.components.base import Component
from pylotto.core.errors import ComponentNotFound, InvalidArgument, NotConfigured, PylottoError
from pylotto.core.resiliency import Resiliency
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing

C = TypeVar("C", bound=Component)
T = TypeVar("T")


@dataclass(frozen=True)
class AppSettings:
    """How the sidecar reaches its app."""

    app_id: str = ""
    http_port: int | None = None
    """The app's HTTP server (InvokeService to the local app)."""
    grpc_callback_host: str = "127.0.0.1"
    grpc_callback_port: int | None = None
    """The app's Layotto AppCallback gRPC server (pub/sub delivery)."""
    protocol: str = "http"
    """What the app serves on ``http_port``: "http", or "grpc" (Dapr's AppCallback)."""
    api_token: str = ""
    """Sent to the app as ``dapr-api-token`` on every call (APP_API_TOKEN)."""


@dataclass(frozen=True)
class RuntimeContext:
    app: AppSettings
    data_dir: Path

    @property
    def app_id(self) -> str:
        return self.app.app_id


class ComponentSet(Generic[C]):
    """The components of one capability, looked up by name with the Layotto error rules."""

    def __init__(self, label: str, components: dict[str, C]) -> None:
        self.label = label
        self._components = components

    def get(self, name: str) -> C:
        if not self._components:
            raise NotConfigured(f"{self.label} is not configured")
        if not name:
            raise InvalidArgument(f"{self.label} name is empty")
        try:
            return self._components[name]
        except KeyError:
            raise ComponentNotFound(f"{self.label} {name} is not found") from None

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

    def __init__(self, components: ComponentSet[C], context: RuntimeContext) -> None:
        self.components = components
        self.context = context
        self.resiliency = Resiliency(None)
        """The runtime's policies (set by the runtime); component calls go through ``call``."""
        self.metrics: Metrics | None = None
        self.tracing = Tracing(None, "")

    async def call(self, component_name: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """A call to a component, under the resiliency policies of its name, counted in the
        metrics."""
        traced = self.tracing.enabled
        if self.metrics is None and not traced:
            return await self.resiliency.call_component(component_name, attempt)
        started = time.perf_counter()
        outcome = "ok"
        try:
            if not traced:
                return await self.resiliency.call_component(component_name, attempt)
            with self.tracing.span(f"{self.components.label} {component_name}", "client"):
                return await self.resiliency.call_component(component_name, attempt)
        except PylottoError as exc:
            outcome = type(exc).__name__
            raise
        finally:
            if self.metrics is not None:
                self.metrics.component_call(f"{self.components.label} {component_name}",
                                            outcome, time.perf_counter() - started)

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
