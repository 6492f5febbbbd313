"""Files: stream a file out of / into a named file store, list, delete and stat."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping

from pylotto.capabilities.base import Capability
from pylotto.components.file.base import FileMeta, FileStore, ListResult
from pylotto.core.errors import InvalidArgument

CHUNK_BYTES = 100 * 1024
"""GetFile sends the file in pieces of at most this size (Layotto: 102 400 bytes)."""


def _require_name(name: str, store_name: str) -> None:
    if not name:
        raise InvalidArgument(f"file name is empty (file store {store_name})")


async def _rechunk(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """Pass chunks through, splitting any that exceed ``limit``."""
    async for chunk in chunks:
        for start in range(0, len(chunk), limit):
            yield chunk[start : start + limit]


class FileCapability(Capability[FileStore]):
    """No store configured: NotConfigured; unknown store: ComponentNotFound; empty name:
    InvalidArgument; missing file: NotFound."""

    async def get(
        self, store_name: str, name: str, metadata: Mapping[str, str]
    ) -> AsyncIterator[bytes]:
        """Open the file (errors raise here) and return its chunks of ≤ CHUNK_BYTES."""
        store = self.components.get(store_name, "get")
        _require_name(name, store_name)
        chunks = await store.get(name, dict(metadata), CHUNK_BYTES)
        return _rechunk(chunks, CHUNK_BYTES)

    async def put(
        self,
        store_name: str,
        name: str,
        data: AsyncIterable[bytes],
        metadata: Mapping[str, str],
    ) -> None:
        store = self.components.get(store_name)
        _require_name(name, store_name)
        await store.put(name, data, dict(metadata))

    async def list(
        self,
        store_name: str,
        directory: str,
        metadata: Mapping[str, str],
        page_size: int = 0,
        marker: str = "",
    ) -> ListResult:
        """Entries of ``directory`` ("" lists the store's top) in name order; ``page_size`` 0
        returns all entries after ``marker``."""
        store = self.components.get(store_name)
        if page_size < 0:
            raise InvalidArgument(f"page_size must not be negative, got {page_size}")
        return await store.list(directory, page_size, marker, dict(metadata))

    async def delete(self, store_name: str, name: str, metadata: Mapping[str, str]) -> None:
        store = self.components.get(store_name)
        _require_name(name, store_name)
        await store.delete(name, dict(metadata))

    async def stat(self, store_name: str, name: str, metadata: Mapping[str, str]) -> FileMeta:
        store = self.components.get(store_name)
        _require_name(name, store_name)
        return await store.stat(name, dict(metadata))
