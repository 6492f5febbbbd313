"""``aws.s3`` / ``minio``: Layotto's file API on S3 or any S3-compatible server, through the
S3 driver (:mod:`pylotto.components._backends.s3_client`).

A file name is ``<bucket>/<key>`` (Layotto's ``components/file/util``: the bucket is what comes
before the first ``/``, the key all after it); a directory to list is ``<bucket>/<prefix>``
(or ``<bucket>``: the whole bucket) and lists every key starting with the prefix, in key order,
the full key as each entry's name.

Metadata: Layotto's, a list of endpoints each with ``endpoint``, ``accessKeyID``,
``accessKeySecret``, ``region`` and (minio-go's) ``SSL``; a Layotto config's list arrives as
``endpoints``, and one endpoint may be written flat (the same keys, no list). With several
endpoints a request picks one by its ``endpoint`` metadata, as Layotto's ``minio`` does.
An ``endpoint`` is a URL or ``host:port`` (then ``https://`` with ``SSL`` true, ``http://``
with false; ``SSL`` defaults to true for ``aws.s3``, false for ``minio`` as minio-go's).

Put streams through the driver's multipart upload (a failed or cancelled put stores nothing),
get reads the body in the caller's chunks: no file is held whole in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pylotto.components._backends.s3_client import S3Client, endpoint_url
from pylotto.components.base import ComponentContext
from pylotto.components.file.base import FileInfo, FileMeta, FileStore, ListResult
from pylotto.core.errors import InvalidArgument, NotFound
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata

ENDPOINT = "endpoint"
"""Request metadata choosing one of several endpoints (Layotto's minio key)."""

ETAG = "ETag"
"""GetFileMeta's key of the object's entity tag (Layotto's ``util.ETag``)."""

LIST_PAGE = 1000
"""Keys per ListObjects call when a ListFile asks for every entry (S3's own maximum)."""


class S3Endpoint(BaseModel):
    """One entry of Layotto's metadata list."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    endpoint: str = ""
    access_key_id: str = Field("", alias="accessKeyID")
    access_key_secret: str = Field("", alias="accessKeySecret")
    region: str = "us-east-1"
    ssl: bool | None = Field(None, alias="SSL")
    force_path_style: bool | None = Field(None, alias="forcePathStyle")


class S3FileSettings(ComponentSettings):
    endpoints: list[S3Endpoint] = Field(default_factory=list)
    endpoint: str = ""
    access_key_id: str = Field("", alias="accessKeyID")
    access_key_secret: str = Field("", alias="accessKeySecret")
    region: str = "us-east-1"
    ssl: bool | None = Field(None, alias="SSL")
    force_path_style: bool | None = Field(None, alias="forcePathStyle")

    @model_validator(mode="after")
    def _complete(self) -> S3FileSettings:
        if self.endpoints and self.endpoint:
            raise ValueError("give the endpoint flat or in the endpoints list, not both")
        for number, entry in enumerate(self.all_endpoints(), 1):
            where = f"endpoint {number}: " if self.endpoints else ""
            missing = [key for key, value in (("endpoint", entry.endpoint),
                                              ("accessKeyID", entry.access_key_id),
                                              ("accessKeySecret", entry.access_key_secret))
                       if not value]
            if missing:  # Layotto refuses them too ("invalid config for aws oss")
                raise ValueError(f"{where}{', '.join(missing)} missing")
            try:
                endpoint_url(entry.endpoint, ssl=True)
            except ValueError as exc:
                raise ValueError(f"{where}endpoint {entry.endpoint!r}: {exc}") from None
        return self

    def all_endpoints(self) -> list[S3Endpoint]:
        if self.endpoints:
            return list(self.endpoints)
        return [S3Endpoint(endpoint=self.endpoint, accessKeyID=self.access_key_id,
                           accessKeySecret=self.access_key_secret, region=self.region,
                           SSL=self.ssl, forcePathStyle=self.force_path_style)]


def split_name(name: str, *, directory: bool = False) -> tuple[str, str]:
    """``(bucket, key)`` of ``<bucket>/<key>``; a directory may be a bare bucket (prefix "")."""
    bucket, slash, key = name.partition("/")
    if not bucket or (not slash and not directory):
        raise InvalidArgument(f"file name {name!r} is not <bucket>/<key>")
    if not key and not directory:
        raise InvalidArgument(f"file name {name!r} names a bucket, not a file")
    return bucket, key


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class S3FileStore(FileStore):
    """``aws.s3``: files in S3 buckets."""

    Settings = S3FileSettings
    DEFAULT_SSL: ClassVar[bool] = True
    """``SSL`` of an endpoint written ``host:port`` without it (the AWS SDK's https)."""

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, S3FileSettings):
            raise TypeError(f"{type(self).__name__} needs S3FileSettings")
        self.clients: dict[str, S3Client] = {}
        for entry in settings.all_endpoints():
            self.clients[entry.endpoint] = self._client(entry)

    def _client(self, entry: S3Endpoint) -> S3Client:
        ssl = entry.ssl if entry.ssl is not None else self.DEFAULT_SSL
        return S3Client(endpoint=endpoint_url(entry.endpoint, ssl=ssl), region=entry.region,
                        access_key_id=entry.access_key_id,
                        access_key_secret=entry.access_key_secret,
                        path_style=entry.force_path_style, logger=self.context.logger)

    async def init(self) -> None:
        for client in self.clients.values():
            await client.open()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    def _select(self, metadata: Metadata) -> S3Client:
        chosen = metadata.get(ENDPOINT)
        if chosen is None:
            if len(self.clients) == 1:
                return next(iter(self.clients.values()))
            raise InvalidArgument(f"file store {self.name} has {len(self.clients)} endpoints: "
                                  f"metadata {ENDPOINT!r} must name one of "
                                  f"{', '.join(sorted(self.clients))}")
        client = self.clients.get(chosen)
        if client is None:
            raise InvalidArgument(f"file store {self.name} has no endpoint {chosen!r} "
                                  f"(it has {', '.join(sorted(self.clients))})")
        return client

    async def get(self, name: str, metadata: Metadata, chunk_size: int) -> AsyncIterator[bytes]:
        bucket, key = split_name(name)
        _, chunks = await self._select(metadata).download({"Bucket": bucket, "Key": key},
                                                          chunk_size)
        return chunks

    async def put(self, name: str, data: AsyncIterable[bytes], metadata: Metadata) -> None:
        bucket, key = split_name(name)
        await self._select(metadata).upload({"Bucket": bucket, "Key": key}, aiter(data))

    async def list(
        self, directory: str, page_size: int, marker: str, metadata: Metadata
    ) -> ListResult:
        bucket, prefix = split_name(directory, directory=True)
        client = self._select(metadata)
        files: list[FileInfo] = []
        truncated = True
        while truncated and (page_size == 0 or len(files) < page_size):
            wanted = LIST_PAGE if page_size == 0 else min(LIST_PAGE, page_size - len(files))
            page: dict[str, Any] = await client.call(
                "ListObjects", Bucket=bucket, Prefix=prefix, Marker=marker, MaxKeys=wanted)
            contents = page.get("Contents") or []
            files += [FileInfo(o["Key"], int(o["Size"]), _iso(o["LastModified"]))
                      for o in contents]
            truncated = bool(page.get("IsTruncated")) and bool(contents)
            if contents:
                marker = contents[-1]["Key"]
        return ListResult(files, files[-1].name if files else "", truncated)

    async def delete(self, name: str, metadata: Metadata) -> None:
        bucket, key = split_name(name)
        await self._select(metadata).call("DeleteObject", Bucket=bucket, Key=key)

    async def stat(self, name: str, metadata: Metadata) -> FileMeta:
        bucket, key = split_name(name)
        try:
            head = await self._select(metadata).call("HeadObject", Bucket=bucket, Key=key)
        except NotFound:
            raise NotFound(f"file {name!r} in file store {self.name} not found") from None
        meta: dict[str, list[str]] = {ETAG: [str(head.get("ETag", ""))]}
        for k, v in (head.get("Metadata") or {}).items():
            meta.setdefault(k, []).append(str(v))
        return FileMeta(int(head.get("ContentLength", 0)), _iso(head["LastModified"]), meta)


class MinioFileStore(S3FileStore):
    """``minio``: the same on a MinIO (or any S3-compatible) server; ``SSL`` off by default."""

    DEFAULT_SSL = False
