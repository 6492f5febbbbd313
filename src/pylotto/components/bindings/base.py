"""Binding contracts: an output binding performs one named operation on an external system
(InvokeBinding); an input binding produces events the sidecar hands to the app.

A component class may be both. Two metadata keys are daprd's, read for every binding
(:class:`BindingSettings`): ``direction`` (``input``, ``output`` or ``input, output``; absent:
whatever the class can do) and ``route`` (the app's HTTP path for the events of an input
binding; absent: the binding's name)."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import Field

from pylotto.components.base import Component
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata

INPUT = "input"
OUTPUT = "output"


class BindingSettings(ComponentSettings):
    """The keys daprd reads on every binding, beside the component's own."""

    direction: str = Field("", alias="direction")
    route: str = Field("", alias="route")

    def directions(self) -> frozenset[str]:
        """The directions ``direction`` names (lower case, trimmed; empty: not given)."""
        return frozenset(d.strip().lower() for d in self.direction.split(",") if d.strip())


@dataclass(frozen=True, slots=True)
class BindingRequest:
    operation: str
    data: bytes = b""
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BindingResponse:
    data: bytes = b""
    metadata: dict[str, str] = field(default_factory=dict)


class OutputBinding(Component):
    """A binding the app calls. ``operations`` lists what :meth:`invoke` accepts; the
    capability refuses any other operation before the binding is called."""

    operations: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    async def invoke(self, request: BindingRequest) -> BindingResponse: ...


@dataclass(frozen=True, slots=True)
class InputEvent:
    """One event of an input binding: its data and metadata, as the app receives them."""

    data: bytes = b""
    metadata: dict[str, str] = field(default_factory=dict)


InputHandler = Callable[[InputEvent], Awaitable[bytes]]
"""Hands an event to the app and returns the app's answer; raises a pylotto error when the
app failed the event (or could not be reached), so the binding can nack, retry or log it."""


class InputBinding(Component):
    """A binding that produces events. :meth:`read` runs until it is cancelled (the sidecar
    stops reading: app gone unhealthy, hot reload, shutdown) and calls ``handler`` once per
    event; it may call it for several events at once."""

    @abc.abstractmethod
    async def read(self, handler: InputHandler) -> None: ...


def directions(component: Component) -> frozenset[str]:
    """What ``component`` serves: the intersection of what its class can do and the
    ``direction`` metadata it was given (daprd's ``isBindingOfDirection``)."""
    can = frozenset({*((INPUT,) if isinstance(component, InputBinding) else ()),
                     *((OUTPUT,) if isinstance(component, OutputBinding) else ())})
    settings = component.settings
    wanted = settings.directions() if isinstance(settings, BindingSettings) else frozenset()
    return can & wanted if wanted else can
