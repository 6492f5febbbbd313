"""InvokeService: the caller's gRPC metadata travels as HTTP headers, the app's response
headers come back as gRPC initial metadata."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from google.protobuf import any_pb2

from pylotto.capabilities.invoke import InvokeRequest
from pylotto.facades.common.base import RuntimeRpcs

_GRPC_ONLY = frozenset({"content-type", "te", "user-agent"})
_METADATA_KEY = re.compile(r"[0-9a-z_.\-]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def _request_headers(metadata: Iterable[tuple[str, Any]] | None) -> list[tuple[str, str]]:
    """Caller metadata worth forwarding: no pseudo-headers, gRPC transport or binary keys."""
    out = []
    for key, value in metadata or ():
        lowered = key.lower()
        if (lowered.startswith((":", "grpc-")) or lowered.endswith("-bin")
                or lowered in _GRPC_ONLY or not isinstance(value, str)):
            continue
        out.append((key, value))
    return out


def _response_metadata(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """App response headers that are valid, non-reserved gRPC metadata."""
    out = []
    for key, value in headers:
        lowered = key.lower()
        if (lowered.startswith("grpc-") or lowered in _GRPC_ONLY or lowered.endswith("-bin")
                or not _METADATA_KEY.fullmatch(lowered) or not _PRINTABLE.fullmatch(value)):
            continue
        out.append((lowered, value))
    return out


class InvokeRpcs(RuntimeRpcs):
    async def InvokeService(
        self, request: Any, context: Any
    ) -> Any:
        message = request.message
        verb, query = "", ""
        if message.HasField("http_extension"):
            ext = message.http_extension
            verb = self.pb.HTTPExtension.Verb.Name(ext.verb)
            query = ext.querystring
        result = await self.runtime.invoke.invoke(
            InvokeRequest(
                app_id=request.id,
                method=message.method,
                data=message.data.value,
                content_type=message.content_type,
                verb=verb,
                querystring=query,
                headers=_request_headers(context.invocation_metadata()),
                deadline_seconds=context.time_remaining(),
            )
        )
        metadata = _response_metadata(result.headers)
        if metadata:
            await context.send_initial_metadata(tuple(metadata))
        return self.pb.InvokeResponse(
            data=any_pb2.Any(value=result.data), content_type=result.content_type
        )
