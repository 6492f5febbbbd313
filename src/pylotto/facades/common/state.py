"""GetState, GetBulkState, SaveState, DeleteState, DeleteBulkState, ExecuteStateTransaction."""

from __future__ import annotations

from typing import Any, ClassVar

from google.protobuf import empty_pb2

from pylotto.capabilities.state import (
    EtagRules,
    StateItem,
    StateOperation,
    concurrency_from_wire,
    consistency_from_wire,
)
from pylotto.facades.common.base import RuntimeRpcs


def state_item(item: Any) -> StateItem:
    return StateItem(
        key=item.key,
        value=item.value,
        etag=item.etag.value if item.HasField("etag") else None,
        metadata=dict(item.metadata),
        concurrency=concurrency_from_wire(item.options.concurrency),
        consistency=consistency_from_wire(item.options.consistency),
    )


class StateRpcs(RuntimeRpcs):
    etag_rules: ClassVar[EtagRules] = EtagRules.DAPR
    """The servicer's dialect, for the etag rules the capability applies."""

    async def GetState(
        self, request: Any, context: Any
    ) -> Any:
        got = await self.services.state.get_state(
            request.store_name,
            request.key,
            consistency_from_wire(request.consistency),
            dict(request.metadata),
        )
        response = self.pb.GetStateResponse(data=got.value, etag=got.etag or "")
        if got.metadata:  # an empty map given to the constructor still costs a copy
            response.metadata.update(got.metadata)
        return response

    async def GetBulkState(
        self, request: Any, context: Any
    ) -> Any:
        items = await self.services.state.get_bulk_state(
            request.store_name, list(request.keys), dict(request.metadata)
        )
        response = self.pb.GetBulkStateResponse()
        add = response.items.add  # in place: 5x cheaper than building items, then the list
        for item in items:
            added = add(key=item.key, data=item.value, etag=item.etag or "")
            if item.error:
                added.error = item.error
            if item.metadata:
                added.metadata.update(item.metadata)
        return response

    async def SaveState(
        self, request: Any, context: Any
    ) -> empty_pb2.Empty:
        await self.services.state.save_state(
            request.store_name, [state_item(item) for item in request.states], self.etag_rules
        )
        return empty_pb2.Empty()

    async def DeleteState(
        self, request: Any, context: Any
    ) -> empty_pb2.Empty:
        item = StateItem(
            key=request.key,
            etag=request.etag.value if request.HasField("etag") else None,
            metadata=dict(request.metadata),
            concurrency=concurrency_from_wire(request.options.concurrency),
            consistency=consistency_from_wire(request.options.consistency),
        )
        await self.services.state.delete_state(request.store_name, item, self.etag_rules)
        return empty_pb2.Empty()

    async def DeleteBulkState(
        self, request: Any, context: Any
    ) -> empty_pb2.Empty:
        await self.services.state.delete_bulk_state(
            request.store_name, [state_item(item) for item in request.states], self.etag_rules
        )
        return empty_pb2.Empty()

    async def ExecuteStateTransaction(
        self, request: Any, context: Any
    ) -> empty_pb2.Empty:
        operations = [
            StateOperation(op.operationType,
                           state_item(op.request) if op.HasField("request") else None)
            for op in request.operations
        ]
        await self.services.state.execute_state_transaction(
            request.storeName, operations, dict(request.metadata), self.etag_rules
        )
        return empty_pb2.Empty()
