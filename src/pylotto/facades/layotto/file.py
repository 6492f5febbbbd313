"""GetFile (server stream), PutFile (client stream), ListFile, DelFile, GetFileMeta."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import empty_pb2

from pylotto.core.errors import InvalidArgument
from pylotto.facades.layotto.base import LayottoRpcs
from pylotto.proto.layotto import runtime_pb2


def _file_request(request: Any) -> runtime_pb2.FileRequest:
    """The nested ``request`` of ListFile/DelFile/GetFileMeta; Layotto refuses it unset."""
    if not request.HasField("request"):
        raise InvalidArgument("request can't be nil")
    inner: runtime_pb2.FileRequest = request.request
    return inner


async def _data(
    first: runtime_pb2.PutFileRequest, rest: AsyncIterator[runtime_pb2.PutFileRequest]
) -> AsyncIterator[bytes]:
    """PutFile payload: the first message's data, then only ``data`` of later messages."""
    yield first.data
    async for message in rest:
        yield message.data


class FileRpcs(LayottoRpcs):
    async def GetFile(
        self, request: runtime_pb2.GetFileRequest, context: Any
    ) -> AsyncIterator[runtime_pb2.GetFileResponse]:
        chunks = await self.services.file.get(
            request.store_name, request.name, dict(request.metadata)
        )
        async for chunk in chunks:
            yield runtime_pb2.GetFileResponse(data=chunk)

    async def PutFile(
        self, request_iterator: AsyncIterator[runtime_pb2.PutFileRequest], context: Any
    ) -> empty_pb2.Empty:
        messages = aiter(request_iterator)
        try:
            first = await anext(messages)
        except StopAsyncIteration:
            return empty_pb2.Empty()  # a stream closed at once stores nothing (Layotto: OK)
        await self.services.file.put(
            first.store_name, first.name, _data(first, messages), dict(first.metadata)
        )
        return empty_pb2.Empty()

    async def ListFile(
        self, request: runtime_pb2.ListFileRequest, context: Any
    ) -> runtime_pb2.ListFileResp:
        inner = _file_request(request)
        result = await self.services.file.list(
            inner.store_name, inner.name, dict(inner.metadata),
            page_size=request.page_size, marker=request.marker,
        )
        files = [
            runtime_pb2.FileInfo(
                file_name=f.name, size=f.size, last_modified=f.last_modified, metadata=f.metadata
            )
            for f in result.files
        ]
        return runtime_pb2.ListFileResp(
            files=files, marker=result.marker, is_truncated=result.is_truncated
        )

    async def DelFile(
        self, request: runtime_pb2.DelFileRequest, context: Any
    ) -> empty_pb2.Empty:
        inner = _file_request(request)
        await self.services.file.delete(inner.store_name, inner.name, dict(inner.metadata))
        return empty_pb2.Empty()

    async def GetFileMeta(
        self, request: runtime_pb2.GetFileMetaRequest, context: Any
    ) -> runtime_pb2.GetFileMetaResponse:
        inner = _file_request(request)
        meta = await self.services.file.stat(inner.store_name, inner.name, dict(inner.metadata))
        response = runtime_pb2.GetFileMetaResponse(size=meta.size, last_modified=meta.last_modified)
        response.response.SetInParent()
        for key, values in meta.metadata.items():
            response.response.metadata[key].value.extend(values)
        return response
