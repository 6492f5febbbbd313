"""An output binding served by a pluggable component (``dapr.proto.components.v1.OutputBinding``).

The operations it accepts come from the component's ListOperations RPC at init.
"""

from __future__ import annotations

from typing import ClassVar

from pylotto.components.bindings.base import BindingRequest, BindingResponse, OutputBinding
from pylotto.components.pluggable.channel import PluggableComponent
from pylotto.proto.components import bindings_pb2, bindings_pb2_grpc, common_pb2

SERVICE = "dapr.proto.components.v1.OutputBinding"


class PluggableOutputBinding(PluggableComponent, OutputBinding):
    """Calls a remote OutputBinding; set ``socketPath`` or use a discovered
    ``bindings.<socket>``."""

    service: ClassVar[str] = SERVICE

    async def init(self) -> None:
        await self.connect()
        assert self.channel is not None
        self.stub = bindings_pb2_grpc.OutputBindingStub(self.channel)
        await self.call(self.stub.Init, bindings_pb2.OutputBindingInitRequest(
            metadata=self.metadata_request()))
        listed = await self.call(self.stub.ListOperations, bindings_pb2.ListOperationsRequest())
        setattr(self, "operations", tuple(listed.operations))  # noqa: B010 - per instance

    async def ping(self) -> None:
        await self.call(self.stub.Ping, common_pb2.PingRequest())

    async def invoke(self, request: BindingRequest) -> BindingResponse:
        got = await self.call(self.stub.Invoke, bindings_pb2.InvokeRequest(
            data=request.data, metadata=dict(request.metadata), operation=request.operation))
        return BindingResponse(got.data, dict(got.metadata))
