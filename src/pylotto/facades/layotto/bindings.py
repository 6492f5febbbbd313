"""InvokeBinding."""

from __future__ import annotations

from typing import Any

from pylotto.facades.layotto.base import LayottoRpcs
from pylotto.proto.layotto import runtime_pb2


class BindingRpcs(LayottoRpcs):
    async def InvokeBinding(
        self, request: runtime_pb2.InvokeBindingRequest, context: Any
    ) -> runtime_pb2.InvokeBindingResponse:
        result = await self.runtime.bindings.invoke(
            request.name, request.operation, request.data, dict(request.metadata)
        )
        return runtime_pb2.InvokeBindingResponse(data=result.data, metadata=result.metadata)
