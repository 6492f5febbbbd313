"""File store contract: stream a file in or out, list a directory, delete, stat."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

from pylotto.components.base import Component
from pylotto.core.types import Metadata


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One entry of a directory listing."""

    name: str
    size: int
    last_modified: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListResult:
    files: list[FileInfo]
    marker: str
    """The name of the last entry returned; pass it back to get the next page."""
    is_truncated: bool
    """True when entries remain after this page."""


@dataclass(frozen=True, slots=True)
class FileMeta:
    size: int
    last_modified: str
    metadata: dict[str, list[str]] = field(default_factory=dict)


class FileStore(Component):
    """Files addressed by name. Errors: NotFound for a missing file, InvalidArgument for a
    name the store refuses, AlreadyExists / PermissionDenied where they apply."""

    @abc.abstractmethod
    async def get(self, name: str, metadata: Metadata, chunk_size: int) -> AsyncIterator[bytes]:
        """Open ``name`` (errors raise here, before any data) and return its chunks, each at
        most ``chunk_size`` bytes."""

    @abc.abstractmethod
    async def put(self, name: str, data: AsyncIterable[bytes], metadata: Metadata) -> None:
        """Store ``data`` as ``name``; a put that fails or is cancelled midway stores nothing."""

    @abc.abstractmethod
    async def list(
        self, directory: str, page_size: int, marker: str, metadata: Metadata
    ) -> ListResult:
        """Entries of ``directory`` ("" = the store's top) in name order, after ``marker``,
        at most ``page_size`` of them (0 = all)."""

    @abc.abstractmethod
    async def delete(self, name: str, metadata: Metadata) -> None: ...

    @abc.abstractmethod
    async def stat(self, name: str, metadata: Metadata) -> FileMeta: ...
