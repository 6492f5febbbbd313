"""``pylotto.v1.StateQuery``: the state query API on the Layotto gRPC port (Layotto has none)."""

from __future__ import annotations

from typing import Any, ClassVar

from pylotto.capabilities.services import CapabilityServices
from pylotto.facades.common.query import QueryRpcs
from pylotto.proto.extensions import state_query_pb2, state_query_pb2_grpc

SERVICE = state_query_pb2.DESCRIPTOR.services_by_name["StateQuery"].full_name


class StateQueryServicer(QueryRpcs, state_query_pb2_grpc.StateQueryServicer):
    pb: ClassVar[Any] = state_query_pb2

    def __init__(self, services: CapabilityServices) -> None:
        self.services = services

    async def QueryState(
        self, request: state_query_pb2.QueryStateRequest, context: Any
    ) -> state_query_pb2.QueryStateResponse:
        response: state_query_pb2.QueryStateResponse = await self.query_state(request)
        return response
