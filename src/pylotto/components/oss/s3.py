"""``aws.oss`` / ``minio`` / ``ceph``: Layotto's object storage on S3 or any S3-compatible
server, through aiobotocore.

Metadata keys are Layotto's (``components/pkg/utils.OssMetadata``): ``endpoint``,
``accessKeyID``, ``accessKeySecret``, ``region``; a Layotto config nests them in
``basic_config``. pylotto adds ``bucket`` (the bucket of requests that name none) and
``forcePathStyle`` (path-style addressing, ``http://host/bucket/key``; on by default when an
``endpoint`` is set, as S3-compatible servers want). Without ``endpoint`` the client talks to
AWS in ``region``.

``put`` streams: the body is cut into parts of :data:`PART_SIZE` and sent as a multipart
upload (one PutObject when it is smaller than one part), so at most one part is in memory;
``upload_part`` spools a part beyond :data:`PART_SIZE` to an unlinked temporary file; ``get``
reads the body in pieces of :data:`CHUNK_SIZE`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from pydantic import Field, field_validator

from pylotto.components.base import ComponentContext
from pylotto.components.oss.base import OPERATIONS, Download, ObjectStorage, Params
from pylotto.core.errors import Internal, InvalidArgument, NotFound, PylottoError, Unavailable
from pylotto.core.metadata import ComponentSettings

PART_SIZE = 5 * 1024 * 1024
"""Size of the parts ``put`` uploads: S3's minimum (but for the last part), and the part size of
the AWS SDK uploader Layotto's S3 component uses."""

CHUNK_SIZE = 1024 * 1024
"""Size of the pieces ``get`` yields (Layotto's servicer sends 1 MiB per message)."""

_CREATE_KEYS = ("ACL", "BucketKeyEnabled", "CacheControl", "ContentDisposition",
                "ContentEncoding", "ContentType", "Expires", "ServerSideEncryption",
                "Metadata", "Tagging", "StorageClass")
"""PutObject parameters a multipart upload takes at its creation."""

_RESULT_KEYS = ("ETag", "VersionId", "Expiration", "BucketKeyEnabled")


class S3Settings(ComponentSettings):
    endpoint: str = ""
    access_key_id: str = Field("", alias="accessKeyID")
    access_key_secret: str = Field("", alias="accessKeySecret")
    region: str = "us-east-1"
    bucket: str = ""
    force_path_style: bool | None = Field(None, alias="forcePathStyle")

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("not an http:// or https:// URL")
        return value


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def translated(err: Exception, operation: str) -> PylottoError:
    """A client error as Layotto answers it: the S3 server's refusal is Internal with its
    text; a server that cannot be reached is Unavailable."""
    if isinstance(err, (EndpointConnectionError, OSError)):
        return Unavailable(f"{operation}: {err}")
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:  # Layotto answers it Internal too; IsObjectExist needs the kind
            return NotFound(f"{operation}: {err}").answered(Internal)
        return Internal(f"{operation}: {err}")
    if isinstance(err, BotoCoreError):
        if "ParamValidation" in type(err).__name__:
            return InvalidArgument(f"{operation}: {err}")
        return Internal(f"{operation}: {err}")
    return Internal(f"{operation}: {err}")


_FAILURES = (ClientError, BotoCoreError, OSError)


async def _pieces(body: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """``body`` regrouped in pieces of ``size`` bytes (the last one shorter)."""
    buffer = bytearray()
    async for chunk in body:
        buffer += chunk
        while len(buffer) >= size:
            with memoryview(buffer) as view:
                piece = bytes(view[:size])  # one copy, no intermediate slice
            del buffer[:size]
            yield piece
            del piece
    if buffer:
        yield bytes(buffer)


class S3ObjectStorage(ObjectStorage):
    Settings = S3Settings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, S3Settings):
            raise TypeError(f"{type(self).__name__} needs S3Settings")
        self.config = settings
        self.default_bucket = settings.bucket
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def init(self) -> None:
        config = self.config
        path_style = config.force_path_style if config.force_path_style is not None \
            else bool(config.endpoint)
        client_config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "auto"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"})
        session = get_session()
        self._client = await self._stack.enter_async_context(session.create_client(
            "s3", region_name=config.region or "us-east-1",
            endpoint_url=config.endpoint or None,
            aws_access_key_id=config.access_key_id or None,
            aws_secret_access_key=config.access_key_secret or None,
            config=client_config))

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    def _coerced(self, operation: str, params: Params) -> Params:
        """``params`` with numbers where S3 wants text and text where it wants numbers
        (Layotto's proto and S3's model disagree on a few, such as ``PartNumberMarker``)."""
        members = self._client.meta.service_model.operation_model(operation).input_shape.members
        out = dict(params)
        for key, value in params.items():
            shape = members.get(key)
            if shape is None:
                continue
            if shape.type_name == "string" and isinstance(value, int) \
                    and not isinstance(value, bool):
                out[key] = str(value)
            elif shape.type_name in ("integer", "long") and isinstance(value, str):
                out[key] = int(value)
        return out

    async def _s3(self, operation: str, **params: Any) -> Params:
        try:
            params = self._coerced(operation, params)
            result: Params = await getattr(self._client, _snake(operation))(**params)
        except _FAILURES as err:
            raise translated(err, operation) from None
        result.pop("ResponseMetadata", None)
        return result

    async def call(self, operation: str, params: Params) -> Params:
        if operation not in OPERATIONS:
            raise InvalidArgument(f"{operation}: not an S3 operation of this component")
        return await self._s3(operation, **params)

    async def put(self, params: Params, body: AsyncIterator[bytes]) -> Params:
        params = {k: v for k, v in params.items() if k != "ContentLength"}
        pieces = _pieces(body, PART_SIZE)
        first = await anext(pieces, b"")
        if len(first) < PART_SIZE:  # the whole object fits in one part
            return await self._s3("PutObject", **params, Body=first)
        target = {"Bucket": params["Bucket"], "Key": params["Key"]}
        created = await self._s3("CreateMultipartUpload", **target,
                                 **{k: params[k] for k in _CREATE_KEYS if k in params})
        upload_id = created["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            piece: bytes | None = first
            while piece:
                number = len(parts) + 1
                answer = await self._s3("UploadPart", **target, UploadId=upload_id,
                                        PartNumber=number, Body=piece)
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
                piece = await anext(pieces, None)
            done = await self._s3("CompleteMultipartUpload", **target, UploadId=upload_id,
                                  MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                await self._s3("AbortMultipartUpload", **target, UploadId=upload_id)
            except PylottoError:
                self.context.logger.warning("oss %s: could not abort the multipart upload of "
                                            "%s", self.name, params["Key"])
            raise
        return {k: done[k] for k in _RESULT_KEYS if k in done}

    async def upload_part(self, params: Params, body: AsyncIterator[bytes]) -> Params:
        with tempfile.SpooledTemporaryFile(max_size=PART_SIZE) as spool:
            size = 0
            async for chunk in body:
                spool.write(chunk)
                size += len(chunk)
            spool.seek(0)
            params = {**params, "ContentLength": size}
            if size <= PART_SIZE:
                return await self._s3("UploadPart", **params, Body=spool.read())
            return await self._s3("UploadPart", **params, Body=spool)

    async def get(self, params: Params) -> Download:
        result = await self._s3("GetObject", **params)
        stream = result.pop("Body")

        async def chunks() -> AsyncGenerator[bytes, None]:
            try:
                while True:
                    piece = bytearray()
                    while len(piece) < CHUNK_SIZE:
                        data = await stream.read(CHUNK_SIZE - len(piece))
                        if not data:
                            break
                        piece += data
                    if piece:
                        yield bytes(piece)
                    if len(piece) < CHUNK_SIZE:
                        return
            except _FAILURES as err:
                raise translated(err, "GetObject") from None
            finally:
                stream.close()

        return Download(result, chunks())

    async def presign(self, operation: str, params: Mapping[str, Any], expires: int) -> str:
        try:
            url: str = await self._client.generate_presigned_url(
                _snake(operation), Params=dict(params), ExpiresIn=expires)
        except _FAILURES as err:
            raise translated(err, "SignURL") from None
        return url
