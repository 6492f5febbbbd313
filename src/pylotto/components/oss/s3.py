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

import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pydantic import Field, field_validator

from pylotto.components._backends.s3_client import PART_SIZE, S3Client, endpoint_url
from pylotto.components.base import ComponentContext
from pylotto.components.oss.base import OPERATIONS, Download, ObjectStorage, Params
from pylotto.core.errors import Internal, InvalidArgument, NotFound
from pylotto.core.metadata import ComponentSettings

CHUNK_SIZE = 1024 * 1024
"""Size of the pieces ``get`` yields (Layotto's servicer sends 1 MiB per message)."""


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
        if value and "://" not in value:
            raise ValueError("not an http:// or https:// URL")
        endpoint_url(value, ssl=True)
        return value


@contextmanager
def _layotto_answers() -> Iterator[None]:
    """A missing object or bucket keeps its kind (IsObjectExist needs it) but is answered
    Internal, as Layotto's servicer answers every failure of its S3 component."""
    try:
        yield
    except NotFound as err:
        raise err.answered(Internal) from None


class S3ObjectStorage(ObjectStorage):
    Settings = S3Settings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, S3Settings):
            raise TypeError(f"{type(self).__name__} needs S3Settings")
        self.default_bucket = settings.bucket
        self.client = S3Client(
            endpoint=endpoint_url(settings.endpoint, ssl=True), region=settings.region,
            access_key_id=settings.access_key_id, access_key_secret=settings.access_key_secret,
            path_style=settings.force_path_style, logger=context.logger)

    async def init(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        await self.client.close()

    async def _s3(self, operation: str, **params: Any) -> Params:
        with _layotto_answers():
            return await self.client.call(operation, **params)

    async def call(self, operation: str, params: Params) -> Params:
        if operation not in OPERATIONS:
            raise InvalidArgument(f"{operation}: not an S3 operation of this component")
        return await self._s3(operation, **params)

    async def put(self, params: Params, body: AsyncIterator[bytes]) -> Params:
        with _layotto_answers():
            return await self.client.upload(params, body)

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
        with _layotto_answers():
            attributes, chunks = await self.client.download(params, CHUNK_SIZE)
        return Download(attributes, chunks)

    async def presign(self, operation: str, params: Mapping[str, Any], expires: int) -> str:
        return await self.client.presign(operation, params, expires)
