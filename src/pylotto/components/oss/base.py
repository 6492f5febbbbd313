"""Object storage contract (Layotto's ``components/oss`` ``Oss``), in S3's terms.

Requests and answers are S3 API shapes (the operation's parameter and result dicts, as
botocore names them: ``Bucket``, ``Key``, ``ContentLength``...), since Layotto's API is S3's.
Bodies stream both ways, so no object is held whole in memory.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from pylotto.components.base import Component

Params = dict[str, Any]
"""An S3 operation's parameters or result."""


@dataclass(frozen=True, slots=True)
class Download:
    """An object being read: its attributes (GetObject's result without the body) and the
    body in pieces."""

    attributes: Params
    chunks: AsyncGenerator[bytes, None]
    """Closed (``aclose``) by the reader that stops early, which frees the connection."""


OPERATIONS = frozenset({
    "DeleteObject", "CopyObject", "DeleteObjects", "ListObjects", "ListObjectsV2",
    "HeadObject", "PutObjectTagging", "DeleteObjectTagging", "GetObjectTagging",
    "GetObjectAcl", "PutObjectAcl", "CreateMultipartUpload", "UploadPartCopy",
    "CompleteMultipartUpload", "AbortMultipartUpload", "ListMultipartUploads", "ListParts",
    "ListObjectVersions", "RestoreObject",
})
"""The S3 operations :meth:`ObjectStorage.call` performs (those without a streamed body)."""


class ObjectStorage(Component):
    """A component holding objects in buckets; addressed by ``store_name``."""

    default_bucket: str = ""
    """The bucket requests without one use ("" none: the bucket is required)."""

    @abc.abstractmethod
    async def put(self, params: Params, body: AsyncIterator[bytes]) -> Params:
        """Store ``body`` (pieces of any size) as one object; PutObject's result."""

    @abc.abstractmethod
    async def get(self, params: Params) -> Download:
        """Read an object (GetObject's parameters)."""

    @abc.abstractmethod
    async def upload_part(self, params: Params, body: AsyncIterator[bytes]) -> Params:
        """Upload one part of a multipart upload from ``body``; UploadPart's result."""

    @abc.abstractmethod
    async def call(self, operation: str, params: Params) -> Params:
        """Perform one of :data:`OPERATIONS`."""

    @abc.abstractmethod
    async def presign(self, operation: str, params: Mapping[str, Any], expires: int) -> str:
        """A URL that performs ``operation`` (GetObject / PutObject) without credentials for
        ``expires`` seconds."""
