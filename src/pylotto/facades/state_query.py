"""``pylotto.v1.StateQuery``: the state query API on the Layotto gRPC port (Layotto has none)."""

from __future__ import annotations

from typing import Any

from pylotto.proto.extensions import state_query_pb2, state_query_pb2_grpc
from pylotto.runtime import Runtime

SERVICE = state_query_pb2.DESCRIPTOR.services_by_name["StateQuery"].full_name


class StateQueryServicer(state_query_pb2_grpc.StateQueryServicer):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def QueryState(
        self, request: state_query_pb2.QueryStateRequest, context: Any
    ) -> state_query_pb2.QueryStateResponse:
        result = await self.runtime.state.query_state(
            request.store_name, request.query, dict(request.metadata)
        )
        return state_query_pb2.QueryStateResponse(
            results=[state_query_pb2.QueryStateItem(key=i.key, data=i.value, etag=i.etag or "")
                     for i in result.items],
            token=result.token,
        )
