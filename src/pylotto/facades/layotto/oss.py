"""Layotto's ``spec.proto.extension.v1.s3.ObjectStorageService`` on the Layotto gRPC port.

Each request becomes the S3 operation of the same name: its set fields (Layotto copies only the
non-empty ones) under S3's names (``version_id`` → ``VersionId``, ``sse_kms_key_id`` →
``SSEKMSKeyId``), and each S3 result fills the output's fields of the same names; times are
Unix seconds both ways. Where the proto and S3 differ (tag maps, byte ranges, copy sources,
user metadata) the RPC says so. See docs/oss.md.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from google.protobuf import empty_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from pylotto.capabilities.services import CapabilityServices
from pylotto.components.oss.base import Params
from pylotto.core.errors import NotFound
from pylotto.proto.layotto import oss_pb2, oss_pb2_grpc

M = TypeVar("M", bound=Message)

SERVICE = oss_pb2.DESCRIPTOR.services_by_name["ObjectStorageService"].full_name

_WORDS = {"sse": "SSE", "acl": "ACL", "acp": "ACP", "md5": "MD5", "kms": "KMS",
          "etag": "ETag", "keyId": "KeyId", "maxKeys": "MaxKeys"}

_NOT_S3 = {"store_name", "body", "signed_url", "accept_encoding", "with_details"}
"""Request fields no S3 operation takes (Layotto's S3 component ignores them too)."""


def s3_name(field: str) -> str:
    if field == "id":
        return "ID"
    return "".join(_WORDS.get(word, word[:1].upper() + word[1:]) for word in field.split("_"))


def s3_params(message: Message, skip: Iterable[str] = ()) -> Params:
    """The fields of ``message`` that are set, under S3's names (nested messages too)."""
    skipped = {*_NOT_S3, *skip}
    out: Params = {}
    for field, value in message.ListFields():
        if field.name in skipped:
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            out[s3_name(field.name)] = dict(value)
        elif field.message_type is not None and field.is_repeated:
            out[s3_name(field.name)] = [s3_params(item) for item in value]
        elif field.message_type is not None:
            out[s3_name(field.name)] = s3_params(value)
        elif field.is_repeated:
            out[s3_name(field.name)] = list(value)
        else:
            out[s3_name(field.name)] = value
    return out


def _scalar(field: Any, value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        if field.type == FieldDescriptor.TYPE_STRING:
            return value.strftime("%a, %d %b %Y %H:%M:%S GMT")
        return int(value.timestamp())
    if field.type == FieldDescriptor.TYPE_STRING:
        return str(value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return bool(value)
    return int(value)


def filled(message: M, result: Mapping[str, Any]) -> M:
    """``message`` with the fields ``result`` (an S3 answer) has under S3's names."""
    for field in message.DESCRIPTOR.fields:
        value = result.get(s3_name(field.name))
        if value is None:
            continue
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if isinstance(value, Mapping):
                target.update({str(k): str(v) for k, v in value.items()})
        elif field.is_repeated and field.message_type is not None:
            for item in value:
                filled(target.add(), item)
        elif field.is_repeated:  # common prefixes: [{"Prefix": ...}]
            target.extend(str(item["Prefix"]) if isinstance(item, Mapping) else str(item)
                          for item in value)
        elif field.message_type is not None:
            filled(target, value)
        else:
            setattr(message, field.name, _scalar(field, value))
    return message


def _tag_query(tags: Mapping[str, str]) -> str:
    return urlencode(sorted(tags.items()))


def _tag_set(tags: Mapping[str, str]) -> dict[str, Any]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}


def _copy_source(source: oss_pb2.CopySource) -> dict[str, str]:
    out = {"Bucket": source.copy_source_bucket, "Key": source.copy_source_key}
    if source.copy_source_version_id:
        out["VersionId"] = source.copy_source_version_id
    return out


_EVERYONE = "http://acs.amazonaws.com/groups/global/AllUsers"
_AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


def canned_acl(grants: Iterable[Mapping[str, Any]], owner_id: str) -> str:
    """The canned ACL an object's grants amount to, besides its owner's ("" when they are no
    canned one)."""
    others: set[tuple[str, str]] = set()
    for grant in grants:
        grantee = grant.get("Grantee", {})
        if "URI" not in grantee and grantee.get("ID") == owner_id:
            continue
        others.add((str(grantee.get("URI") or grantee.get("ID")), str(grant.get("Permission"))))
    table = {
        frozenset(): "private",
        frozenset({(_EVERYONE, "READ")}): "public-read",
        frozenset({(_EVERYONE, "READ"), (_EVERYONE, "WRITE")}): "public-read-write",
        frozenset({(_AUTHENTICATED, "READ")}): "authenticated-read",
    }
    return table.get(frozenset(others), "")


class ObjectStorageServicer(oss_pb2_grpc.ObjectStorageServiceServicer):
    def __init__(self, services: CapabilityServices) -> None:
        self.oss = services.oss

    async def _perform(self, store: str, operation: str, params: Params, output: M) -> M:
        return filled(output, await self.oss.perform(store, operation, params))

    # ---- streamed bodies

    async def PutObject(self, request_iterator: AsyncIterator[oss_pb2.PutObjectInput],
                        context: Any) -> oss_pb2.PutObjectOutput:
        first = await anext(aiter(request_iterator), None)
        if first is None:  # a client that sends nothing: Layotto answers an empty output
            return oss_pb2.PutObjectOutput()
        params = s3_params(first, skip=("meta", "tagging"))
        if first.meta:
            params["Metadata"] = dict(first.meta)
        if first.tagging:
            params["Tagging"] = _tag_query(first.tagging)

        async def body() -> AsyncIterator[bytes]:
            if first.body:
                yield first.body
            async for more in request_iterator:
                if more.body:
                    yield more.body

        result = await self.oss.put(first.store_name, params, body())
        return filled(oss_pb2.PutObjectOutput(), result)

    async def GetObject(self, request: oss_pb2.GetObjectInput,
                        context: Any) -> AsyncIterator[oss_pb2.GetObjectOutput]:
        params = s3_params(request, skip=("start", "end"))
        if request.start or request.end:
            params["Range"] = f"bytes={request.start}-{request.end or ''}"
        download = await self.oss.get(request.store_name, params)
        head = filled(oss_pb2.GetObjectOutput(), download.attributes)
        sent = False
        try:
            async for chunk in download.chunks:
                message = oss_pb2.GetObjectOutput()
                message.CopyFrom(head)
                message.body = chunk
                sent = True
                yield message
        finally:  # a client that went away: the S3 connection is released now
            await download.chunks.aclose()
        if not sent:
            yield head

    async def UploadPart(self, request_iterator: AsyncIterator[oss_pb2.UploadPartInput],
                         context: Any) -> oss_pb2.UploadPartOutput:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return oss_pb2.UploadPartOutput()
        params = s3_params(first, skip=("content_length",))

        async def body() -> AsyncIterator[bytes]:
            if first.body:
                yield first.body
            async for more in request_iterator:
                if more.body:
                    yield more.body

        result = await self.oss.upload_part(first.store_name, params, body())
        return filled(oss_pb2.UploadPartOutput(), result)

    async def AppendObject(self, request_iterator: AsyncIterator[oss_pb2.AppendObjectInput],
                           context: Any) -> oss_pb2.AppendObjectOutput:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return oss_pb2.AppendObjectOutput()
        raise self.oss.unsupported(first.store_name, "AppendObject")

    # ---- one object

    async def DeleteObject(self, request: oss_pb2.DeleteObjectInput,
                           context: Any) -> oss_pb2.DeleteObjectOutput:
        return await self._perform(request.store_name, "DeleteObject", s3_params(request),
                                   oss_pb2.DeleteObjectOutput())

    async def CopyObject(self, request: oss_pb2.CopyObjectInput,
                         context: Any) -> oss_pb2.CopyObjectOutput:
        params = s3_params(request, skip=("copy_source", "tagging"))
        params["CopySource"] = _copy_source(request.copy_source)
        if request.tagging:
            params["Tagging"] = _tag_query(request.tagging)
            params["TaggingDirective"] = "REPLACE"
        if request.metadata and "MetadataDirective" not in params:
            params["MetadataDirective"] = "REPLACE"
        return await self._perform(request.store_name, "CopyObject", params,
                                   oss_pb2.CopyObjectOutput())

    async def HeadObject(self, request: oss_pb2.HeadObjectInput,
                         context: Any) -> oss_pb2.HeadObjectOutput:
        result = await self.oss.perform(request.store_name, "HeadObject", s3_params(request))
        out = oss_pb2.HeadObjectOutput()
        out.result_metadata.update({str(k): str(v)
                                    for k, v in result.get("Metadata", {}).items()})
        if request.with_details:  # the object's own attributes beside its user metadata
            for key, value in result.items():
                if key != "Metadata" and not isinstance(value, (dict, list)):
                    out.result_metadata[key] = str(int(value.timestamp())) \
                        if isinstance(value, datetime.datetime) else str(value)
        return out

    async def IsObjectExist(self, request: oss_pb2.IsObjectExistInput,
                            context: Any) -> oss_pb2.IsObjectExistOutput:
        try:
            await self.oss.perform(request.store_name, "HeadObject", s3_params(request))
        except NotFound:
            return oss_pb2.IsObjectExistOutput(file_exist=False)
        return oss_pb2.IsObjectExistOutput(file_exist=True)

    async def RestoreObject(self, request: oss_pb2.RestoreObjectInput,
                            context: Any) -> oss_pb2.RestoreObjectOutput:
        return await self._perform(request.store_name, "RestoreObject", s3_params(request),
                                   oss_pb2.RestoreObjectOutput())

    # ---- many objects

    async def DeleteObjects(self, request: oss_pb2.DeleteObjectsInput,
                            context: Any) -> oss_pb2.DeleteObjectsOutput:
        return await self._perform(request.store_name, "DeleteObjects", s3_params(request),
                                   oss_pb2.DeleteObjectsOutput())

    async def ListObjects(self, request: oss_pb2.ListObjectsInput,
                          context: Any) -> oss_pb2.ListObjectsOutput:
        result = await self.oss.perform(request.store_name, "ListObjects", s3_params(request))
        out = filled(oss_pb2.ListObjectsOutput(), result)
        if out.is_truncated and out.contents and not (request.delimiter and out.next_marker):
            # S3 answers NextMarker only with a delimiter; else the next page starts after
            # the last key (what S3's documentation tells clients to send)
            out.next_marker = out.contents[-1].key
        return out

    async def ListObjectVersions(self, request: oss_pb2.ListObjectVersionsInput,
                                 context: Any) -> oss_pb2.ListObjectVersionsOutput:
        return await self._perform(request.store_name, "ListObjectVersions", s3_params(request),
                                   oss_pb2.ListObjectVersionsOutput())

    # ---- tagging and ACL

    async def PutObjectTagging(self, request: oss_pb2.PutObjectTaggingInput,
                               context: Any) -> oss_pb2.PutObjectTaggingOutput:
        params = s3_params(request, skip=("tags",))
        params["Tagging"] = _tag_set(request.tags)
        return await self._perform(request.store_name, "PutObjectTagging", params,
                                   oss_pb2.PutObjectTaggingOutput())

    async def GetObjectTagging(self, request: oss_pb2.GetObjectTaggingInput,
                               context: Any) -> oss_pb2.GetObjectTaggingOutput:
        result = await self.oss.perform(request.store_name, "GetObjectTagging",
                                        s3_params(request))
        out = oss_pb2.GetObjectTaggingOutput(version_id=str(result.get("VersionId") or ""))
        out.tags.update({str(t["Key"]): str(t["Value"]) for t in result.get("TagSet", [])})
        return out

    async def DeleteObjectTagging(self, request: oss_pb2.DeleteObjectTaggingInput,
                                  context: Any) -> oss_pb2.DeleteObjectTaggingOutput:
        return await self._perform(request.store_name, "DeleteObjectTagging", s3_params(request),
                                   oss_pb2.DeleteObjectTaggingOutput())

    async def GetObjectCannedAcl(self, request: oss_pb2.GetObjectCannedAclInput,
                                 context: Any) -> oss_pb2.GetObjectCannedAclOutput:
        result = await self.oss.perform(request.store_name, "GetObjectAcl", s3_params(request))
        out = filled(oss_pb2.GetObjectCannedAclOutput(), result)
        out.canned_acl = canned_acl(result.get("Grants", []), out.owner.id)
        return out

    async def PutObjectCannedAcl(self, request: oss_pb2.PutObjectCannedAclInput,
                                 context: Any) -> oss_pb2.PutObjectCannedAclOutput:
        return await self._perform(request.store_name, "PutObjectAcl", s3_params(request),
                                   oss_pb2.PutObjectCannedAclOutput())

    # ---- multipart upload

    async def CreateMultipartUpload(self, request: oss_pb2.CreateMultipartUploadInput,
                                    context: Any) -> oss_pb2.CreateMultipartUploadOutput:
        params = s3_params(request, skip=("meta_data", "tagging"))
        if request.meta_data:
            params["Metadata"] = dict(request.meta_data)
        if request.tagging:
            params["Tagging"] = _tag_query(request.tagging)
        return await self._perform(request.store_name, "CreateMultipartUpload", params,
                                   oss_pb2.CreateMultipartUploadOutput())

    async def UploadPartCopy(self, request: oss_pb2.UploadPartCopyInput,
                             context: Any) -> oss_pb2.UploadPartCopyOutput:
        params = s3_params(request, skip=("copy_source", "start_position", "part_size"))
        params["CopySource"] = _copy_source(request.copy_source)
        if request.part_size:
            last = request.start_position + request.part_size - 1
            params["CopySourceRange"] = f"bytes={request.start_position}-{last}"
        return await self._perform(request.store_name, "UploadPartCopy", params,
                                   oss_pb2.UploadPartCopyOutput())

    async def CompleteMultipartUpload(self, request: oss_pb2.CompleteMultipartUploadInput,
                                      context: Any) -> oss_pb2.CompleteMultipartUploadOutput:
        return await self._perform(request.store_name, "CompleteMultipartUpload",
                                   s3_params(request), oss_pb2.CompleteMultipartUploadOutput())

    async def AbortMultipartUpload(self, request: oss_pb2.AbortMultipartUploadInput,
                                   context: Any) -> oss_pb2.AbortMultipartUploadOutput:
        return await self._perform(request.store_name, "AbortMultipartUpload", s3_params(request),
                                   oss_pb2.AbortMultipartUploadOutput())

    async def ListMultipartUploads(self, request: oss_pb2.ListMultipartUploadsInput,
                                   context: Any) -> oss_pb2.ListMultipartUploadsOutput:
        return await self._perform(request.store_name, "ListMultipartUploads", s3_params(request),
                                   oss_pb2.ListMultipartUploadsOutput())

    async def ListParts(self, request: oss_pb2.ListPartsInput,
                        context: Any) -> oss_pb2.ListPartsOutput:
        return await self._perform(request.store_name, "ListParts", s3_params(request),
                                   oss_pb2.ListPartsOutput())

    # ---- presigned URLs and what S3 has no operation for

    async def SignURL(self, request: oss_pb2.SignURLInput,
                      context: Any) -> oss_pb2.SignURLOutput:
        url = await self.oss.sign_url(request.store_name, request.method,
                                      {"Bucket": request.bucket, "Key": request.key},
                                      int(request.expired_in_sec))
        return oss_pb2.SignURLOutput(signed_url=url)

    async def UpdateDownloadBandwidthRateLimit(
        self, request: oss_pb2.UpdateBandwidthRateLimitInput, context: Any
    ) -> empty_pb2.Empty:
        raise self.oss.unsupported(request.store_name, "UpdateDownloadBandwidthRateLimit")

    async def UpdateUploadBandwidthRateLimit(
        self, request: oss_pb2.UpdateBandwidthRateLimitInput, context: Any
    ) -> empty_pb2.Empty:
        raise self.oss.unsupported(request.store_name, "UpdateUploadBandwidthRateLimit")
