"""An S3 client on aiobotocore for every component that talks S3 (object storage, the file
API's S3 types): the client's configuration, the one translation of S3 failures into pylotto
errors, streamed uploads (multipart beyond one part) and streamed downloads.

``upload`` cuts the body into parts of :data:`PART_SIZE` and sends a multipart upload (one
PutObject when it is smaller than one part), so at most one part is in memory, and aborts the
upload when the stream fails or is cancelled, so nothing is stored; ``download`` reads a body in
pieces of a chosen size.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from pylotto.core.errors import Internal, InvalidArgument, NotFound, PylottoError, Unavailable

Params = dict[str, Any]
"""An S3 operation's parameters or result, as botocore names them (``Bucket``, ``Key``...)."""

PART_SIZE = 5 * 1024 * 1024
"""Size of the parts ``upload`` sends: S3's minimum (but for the last part), and the part size of
the AWS SDK uploader Layotto's S3 components use."""

CREATE_KEYS = ("ACL", "BucketKeyEnabled", "CacheControl", "ContentDisposition",
               "ContentEncoding", "ContentType", "Expires", "ServerSideEncryption",
               "Metadata", "Tagging", "StorageClass")
"""PutObject parameters a multipart upload takes at its creation."""

RESULT_KEYS = ("ETag", "VersionId", "Expiration", "BucketKeyEnabled")
"""What CompleteMultipartUpload answers that PutObject answers too."""

FAILURES = (ClientError, BotoCoreError, OSError)
"""What a call of the client raises when it fails."""

_URL = re.compile(r"https?://[^/\s]+")


def endpoint_url(endpoint: str, *, ssl: bool) -> str | None:
    """The URL of ``endpoint``: as written when it has a scheme, else ``https://`` (``ssl``) or
    ``http://`` before it (``host:port``, minio-go's form); None (AWS) when empty. ValueError
    for anything else."""
    if not endpoint:
        return None
    url = endpoint if "://" in endpoint else f"{'https' if ssl else 'http'}://{endpoint}"
    if not _URL.match(url):
        raise ValueError("not an http:// or https:// URL, nor host:port")
    return url


def translated(err: Exception, operation: str) -> PylottoError:
    """An S3 failure as a pylotto error: a server that cannot be reached is Unavailable, a 404
    (no such key or bucket) NotFound, a request botocore refuses before sending InvalidArgument,
    any other refusal of the server Internal with its text."""
    if isinstance(err, (EndpointConnectionError, OSError)):
        return Unavailable(f"{operation}: {err}")
    if isinstance(err, ClientError):
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            return NotFound(f"{operation}: {err}")
        return Internal(f"{operation}: {err}")
    if isinstance(err, BotoCoreError) and "ParamValidation" in type(err).__name__:
        return InvalidArgument(f"{operation}: {err}")
    return Internal(f"{operation}: {err}")


def snake(operation: str) -> str:
    """botocore's method name of an S3 operation (``PutObject`` → ``put_object``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


async def pieces(body: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
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


class S3Client:
    """One aiobotocore S3 client: ``open`` it, ``call`` operations, ``close`` it."""

    def __init__(self, *, endpoint: str | None, region: str, access_key_id: str,
                 access_key_secret: str, path_style: bool | None, logger: logging.Logger) -> None:
        """``endpoint``: a URL (None: AWS in ``region``); ``path_style`` (``http://host/bucket``)
        None means on when an endpoint is given, as S3-compatible servers want."""
        self.endpoint = endpoint
        self.region = region or "us-east-1"
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.path_style = path_style if path_style is not None else bool(endpoint)
        self.logger = logger
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def open(self) -> None:
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.path_style else "auto"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 3, "mode": "standard"})
        self._client = await self._stack.enter_async_context(get_session().create_client(
            "s3", region_name=self.region, endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key_id or None,
            aws_secret_access_key=self.access_key_secret or None, config=config))

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    def _coerced(self, operation: str, params: Params) -> Params:
        """``params`` with numbers where S3 wants text and text where it wants numbers
        (Layotto's protos and S3's model disagree on a few, such as ``PartNumberMarker``)."""
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

    async def call(self, operation: str, **params: Any) -> Params:
        """S3 ``operation`` with ``params``; its result without ``ResponseMetadata``."""
        if self._client is None:
            raise Unavailable(f"{operation}: the S3 client is closed")
        try:
            params = self._coerced(operation, params)
            result: Params = await getattr(self._client, snake(operation))(**params)
        except FAILURES as err:
            raise translated(err, operation) from None
        result.pop("ResponseMetadata", None)
        return result

    async def upload(self, params: Params, body: AsyncIterator[bytes]) -> Params:
        """Store ``body`` (pieces of any size) as the object ``params`` name (PutObject's
        parameters but the body); PutObject's result."""
        params = {k: v for k, v in params.items() if k != "ContentLength"}
        parts_of = pieces(body, PART_SIZE)
        first = await anext(parts_of, b"")
        if len(first) < PART_SIZE:  # the whole object fits in one part
            return await self.call("PutObject", **params, Body=first)
        target = {"Bucket": params["Bucket"], "Key": params["Key"]}
        created = await self.call("CreateMultipartUpload", **target,
                                  **{k: params[k] for k in CREATE_KEYS if k in params})
        upload_id = created["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            piece: bytes | None = first
            while piece:
                number = len(parts) + 1
                answer = await self.call("UploadPart", **target, UploadId=upload_id,
                                         PartNumber=number, Body=piece)
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
                piece = await anext(parts_of, None)
            done = await self.call("CompleteMultipartUpload", **target, UploadId=upload_id,
                                   MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                await self.call("AbortMultipartUpload", **target, UploadId=upload_id)
            except PylottoError:
                self.logger.warning("could not abort the multipart upload of %s/%s",
                                    target["Bucket"], target["Key"])
            raise
        return {k: done[k] for k in RESULT_KEYS if k in done}

    async def download(self, params: Params, chunk_size: int) -> tuple[Params, AsyncGenerator[
            bytes, None]]:
        """GetObject with ``params``: its result without the body (errors raise here, before
        any data), and the body in pieces of ``chunk_size`` (the last one shorter). Closing
        the generator early frees the connection."""
        result = await self.call("GetObject", **params)
        stream = result.pop("Body")

        async def chunks() -> AsyncGenerator[bytes, None]:
            try:
                while True:
                    piece = bytearray()
                    while len(piece) < chunk_size:
                        data = await stream.read(chunk_size - len(piece))
                        if not data:
                            break
                        piece += data
                    if piece:
                        yield bytes(piece)
                    if len(piece) < chunk_size:
                        return
            except FAILURES as err:
                raise translated(err, "GetObject") from None
            finally:
                stream.close()

        return result, chunks()

    async def presign(self, operation: str, params: Mapping[str, Any], expires: int) -> str:
        try:
            url: str = await self._client.generate_presigned_url(
                snake(operation), Params=dict(params), ExpiresIn=expires)
        except FAILURES as err:
            raise translated(err, "SignURL") from None
        return url
