"""GetNextId."""

from __future__ import annotations

from typing import Any

from pylotto.capabilities.sequencer import increment_from_wire
from pylotto.facades.layotto.base import LayottoRpcs
from pylotto.proto.layotto import runtime_pb2


class SequencerRpcs(LayottoRpcs):
    async def GetNextId(
        self, request: runtime_pb2.GetNextIdRequest, context: Any
    ) -> runtime_pb2.GetNextIdResponse:
        increment = increment_from_wire(
            request.options.increment if request.HasField("options") else None)
        next_id = await self.services.sequencer.get_next_id(
            request.store_name, request.key, increment, dict(request.metadata)
        )
        return runtime_pb2.GetNextIdResponse(next_id=next_id)
