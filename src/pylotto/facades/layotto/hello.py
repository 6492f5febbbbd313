"""SayHello."""

from __future__ import annotations

from typing import Any

from pylotto.facades.layotto.base import LayottoRpcs
from pylotto.proto.layotto import runtime_pb2


class HelloRpcs(LayottoRpcs):
    async def SayHello(
        self, request: runtime_pb2.SayHelloRequest, context: Any
    ) -> runtime_pb2.SayHelloResponse:
        hello = await self.services.hello.say_hello(request.service_name, request.name)
        response = runtime_pb2.SayHelloResponse(hello=hello)
        if request.HasField("data"):
            response.data.CopyFrom(request.data)  # echoed unchanged
        return response
