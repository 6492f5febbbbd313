"""InvokeBinding."""

from __future__ import annotations

from typing import Any

from pylotto.facades.common.base import RuntimeRpcs


class BindingRpcs(RuntimeRpcs):
    async def InvokeBinding(
        self, request: Any, context: Any
    ) -> Any:
        result = await self.services.bindings.invoke(
            request.name, request.operation, request.data, dict(request.metadata)
        )
        return self.pb.InvokeBindingResponse(data=result.data, metadata=result.metadata)
