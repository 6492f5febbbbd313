"""Output binding contract: perform one named operation on an external system."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

from pylotto.components.base import Component
from pylotto.core.types import Metadata


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
