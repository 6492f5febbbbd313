"""Bindings: InvokeBinding on a named output binding."""

from __future__ import annotations

from collections.abc import Mapping

from pylotto.capabilities.base import Capability
from pylotto.components.bindings.base import BindingRequest, BindingResponse, OutputBinding
from pylotto.core.errors import InvalidArgument, PylottoError


class BindingsCapability(Capability[OutputBinding]):
    """No binding configured: NotConfigured; unknown name: ComponentNotFound; empty or
    unsupported operation: InvalidArgument (the message lists the supported ones)."""

    async def invoke(
        self, name: str, operation: str, data: bytes, metadata: Mapping[str, str]
    ) -> BindingResponse:
        binding = self.components.get(name)
        if not operation:
            raise InvalidArgument(f"operation field is missing from request (binding {name})",
                                  where="bindings.invoke", name=name,
                                  detail="operation field is missing from request")
        if operation not in binding.operations:
            supported = ", ".join(binding.operations)
            raise InvalidArgument(
                f"binding {name} does not support operation {operation}. "
                f"supported operations: {supported}",
                where="bindings.invoke", name=name,
                detail=f"binding {name} does not support operation {operation}. "
                       f"supported operations:{' '.join(binding.operations)}",
            )
        request = BindingRequest(operation, data, dict(metadata))
        try:
            return await self.call(name, lambda: binding.invoke(request))
        except PylottoError as err:
            raise err.at("bindings.invoke", name=name) from None
