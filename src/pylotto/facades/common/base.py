"""What every gRPC RPC mixin can rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pylotto.process.runtime import Runtime


class RuntimeRpcs:
    """Base of the per-capability mixins: ``self.runtime``, and ``pb`` — the module (or
    namespace) of the servicer's messages (Layotto's ``runtime_pb2``, Dapr's messages)."""

    runtime: Runtime
    pb: ClassVar[Any]
