"""What every gRPC RPC mixin can rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pylotto.capabilities.services import CapabilityServices


class RuntimeRpcs:
    """Base of the per-capability mixins: ``self.services`` (the capability services, where
    every rule lives), and ``pb`` — the module (or namespace) of the servicer's messages
    (Layotto's ``runtime_pb2``, Dapr's messages)."""

    services: CapabilityServices
    pb: ClassVar[Any]
