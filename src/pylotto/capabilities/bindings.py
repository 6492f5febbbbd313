"""Bindings: InvokeBinding on a named output binding."""

from __future__ import annotations

from collections.abc import Mapping

from pylotto.capabilities.base import Capability
from pylotto.components.bindings.base import BindingRequest, BindingResponse, OutputBinding
from pylotto.core.errors import InvalidArgument


class BindingsCapability(Capability[OutputBinding]):
    """No binding configured: NotConfigured; unknown name: ComponentNotFound; empty or
    unsupported operation: InvalidArgument (the message lists the supported ones)."""

    async def invoke(
        self, name: str, operation: str, data: bytes, metadata: Mapping[str, str]
    ) -> BindingResponse:
        binding = self.components.get(name)
        if not operation:
            raise InvalidArgument(f"operation field is missing from request (binding {name})")
        if operation not in binding.operations:
            supported = ", ".join(binding.operations)
            raise InvalidArgument(
                f"binding {name} does not support operation {operation}. "
                f"supported operations: {supported}"
            )
        request = BindingRequest(operation, data, dict(metadata))
        return await self.call(name, lambda: binding.invoke(request))
