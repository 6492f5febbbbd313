"""InvokeService: the caller's gRPC metadata travels as HTTP headers, the app's response
headers come back as gRPC initial metadata; a protobuf payload keeps its ``Any`` type both
ways (a gRPC app's reply reaches the caller as the app packed it, as in Dapr)."""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2

from pylotto.capabilities import forwarding
from pylotto.capabilities.invoke import InvokeRequest
from pylotto.core.errors import InvalidArgument
from pylotto.facades.common.base import RuntimeRpcs


class InvokeRpcs(RuntimeRpcs):
    async def InvokeService(
        self, request: Any, context: Any
    ) -> Any:
        message = request.message
        verb, query = "", ""
        if message.HasField("http_extension"):
            ext = message.http_extension
            try:
                verb = self.pb.HTTPExtension.Verb.Name(ext.verb)
            except ValueError:
                raise InvalidArgument(
                    f"http_extension.verb {ext.verb} is not an HTTP verb") from None
            query = ext.querystring
        result = await self.services.invoke.invoke(
            InvokeRequest(
                app_id=request.id,
                method=message.method,
                data=message.data.value,
                content_type=message.content_type,
                verb=verb,
                querystring=query,
                headers=forwarding.from_grpc_metadata(context.invocation_metadata()),
                deadline_seconds=context.time_remaining(),
                data_type_url=message.data.type_url,
            )
        )
        metadata = forwarding.to_grpc_metadata(result.headers)
        if metadata:
            await context.send_initial_metadata(tuple(metadata))
        return self.pb.InvokeResponse(
            data=any_pb2.Any(type_url=result.data_type_url, value=result.data),
            content_type=result.content_type,
        )
