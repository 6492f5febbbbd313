"""``in-memory``: a state store in this process's memory (lost on restart).

Etags are random UUIDs, one per write, as components-contrib's in-memory store (so a
version is never reused, not even for a key deleted and written again); a given etag is
compared as text, so any other text is a mismatch. Expired items are dropped when read and
swept at most once a minute on write. No verb awaits between reading a key's version and
writing it, so concurrent coroutines cannot interleave inside one check-and-write: of N writers
holding the same etag exactly one wins.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pylotto.components.base import ComponentContext
from pylotto.components.state.base import (
    BatchStateStore,
    BulkGetItem,
    Consistency,
    Feature,
    GetResult,
    KeyListingStateStore,
    SetRequest,
    StateSettings,
    TransactionOp,
    check_write,
    expires_at,
    expiry_metadata,
)
from pylotto.components.state.query import Query as StateQuery
from pylotto.components.state.query import (
    QueryableStateStore,
    QueryItem,
    QueryResult,
    sort_and_filter_sequence,
)
from pylotto.core.types import Metadata

SWEEP_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _Entry:
    value: bytes
    version: str
    expires_at: float | None


class MemoryStateStore(BatchStateStore, QueryableStateStore, KeyListingStateStore):
    per_process = True
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL, Feature.QUERY_API})

    def __init__(self, name: str, settings: StateSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self._items: dict[str, _Entry] = {}
        self._next_sweep = time.time() + SWEEP_INTERVAL_SECONDS

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._items.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
            del self._items[key]
            return None
        return entry

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        entry = self._live(key, time.time())
        if entry is None:
            return None
        return GetResult(entry.value, entry.version, expiry_metadata(entry.expires_at))

    async def query(self, query: StateQuery, metadata: Metadata) -> QueryResult:
        now = time.time()
        items = [
            QueryItem(key, entry.value, entry.version)
            for key in list(self._items)
            if key.startswith(query.key_prefix) and (entry := self._live(key, now)) is not None
        ]
        return sort_and_filter_sequence(items, query)

    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        now = time.time()
        return [key for key in list(self._items)
                if key.startswith(prefix) and self._live(key, now) is not None][:limit]

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        now = time.time()
        items = []
        for key in keys:
            entry = self._live(key, now)
            if entry is None:
                items.append(BulkGetItem(key))
            else:
                items.append(BulkGetItem(key, entry.value, entry.version,
                                         metadata=expiry_metadata(entry.expires_at)))
        return items

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        # no await below: the check and the publish cannot interleave with another writer
        """Check every operation against the staged state, then publish all or nothing."""
        now = time.time()
        staged: dict[str, _Entry | None] = {}
        for op in operations:
            current = staged[op.key] if op.key in staged else self._live(op.key, now)
            check_write(op, current.version if current else None, self.name)
            if isinstance(op, SetRequest):
                expiry = expires_at(op.ttl_seconds, self.settings.ttl_in_seconds, now)
                staged[op.key] = _Entry(op.value, str(uuid.uuid4()), expiry)
            else:
                staged[op.key] = None
        for key, entry in staged.items():
            if entry is None:
                self._items.pop(key, None)
            else:
                self._items[key] = entry
        if now >= self._next_sweep:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + SWEEP_INTERVAL_SECONDS
        expired = [k for k, e in self._items.items() if e.expires_at is not None
                   and e.expires_at <= now]
        for key in expired:
            del self._items[key]
        if expired:
            self.context.logger.debug("swept %d expired keys", len(expired))
