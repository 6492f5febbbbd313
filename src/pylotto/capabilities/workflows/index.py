"""The instance index (docs/workflows.md "How it works"): which instances exist, for the
recovery at start, the sweep and ``ListInstanceIDs``.

Layout: :data:`SHARDS` keys of the pseudo actor ``<index_type>||index`` in the actor state
store, ``ids-00`` … ``ids-63``; an instance id is in shard ``crc32(utf-8 id) % SHARDS``
(fixed: changing it would move ids between shards), each shard a sorted JSON list. A create
or purge rewrites the one shard of its id by compare-and-set (its etag, or first-write while
it does not exist), retried when another sidecar wrote in between; writers of different
shards never collide, and a shard is ≈ 1/64 of the index.

``ListInstanceIDs`` pages over the shards in order, each in id order. Its continuation token
is ``<shard>:<last id returned>``: the next page resumes strictly after that id (as daprd's
``KeysLike`` resumes after the last row returned), so ids added or purged meanwhile make
no other id skipped or listed twice. No more pages: an empty token.

The index was one key (``ids``, a JSON list) before: :meth:`InstanceIndex.migrate` (at
start) moves its ids into the shards, then deletes it under the etag read.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import random
import zlib

from pylotto.capabilities.actors.api import ActorRef
from pylotto.capabilities.actors.names import PARTITION_KEY, actor_prefix, state_key
from pylotto.capabilities.actors.state import ActorState
from pylotto.capabilities.workflows.names import INDEX_ID, index_type
from pylotto.components.state.base import Concurrency, Consistency, DeleteRequest, SetRequest
from pylotto.core.errors import EtagMismatch, Internal, InvalidArgument

log = logging.getLogger("pylotto.workflows")

SHARDS = 64
OLD_KEY = "ids"
"""The former single index key."""
ATTEMPTS = 50
"""Compare-and-set attempts of one change before it is given up (logged)."""


def shard_of(instance_id: str) -> int:
    return zlib.crc32(instance_id.encode()) % SHARDS


def shard_key(shard: int) -> str:
    return f"ids-{shard:02d}"


def _token(shard: int, last: str) -> str:
    return f"{shard}:{last}"


def _parse_token(token: str) -> tuple[int, str]:
    shard, sep, last = token.partition(":")
    if not sep or not shard.isdigit() or not 0 <= int(shard) < SHARDS:
        raise InvalidArgument(f"invalid continuation token {token!r}",
                              where="workflows.continuation_token")
    return int(shard), last


class InstanceIndex:
    def __init__(self, store: ActorState, app_id: str) -> None:
        self.store = store
        self.ref = ActorRef(index_type(app_id), INDEX_ID)
        self.keys = [state_key(app_id, self.ref, shard_key(k)) for k in range(SHARDS)]
        self.old_key = state_key(app_id, self.ref, OLD_KEY)
        self.metadata = {PARTITION_KEY: actor_prefix(app_id, self.ref)}
        self._locks = [asyncio.Lock() for _ in range(SHARDS)]
        """This sidecar's writers of one shard queue instead of colliding."""

    # ---- reading -----------------------------------------------------------------------------

    async def shard(self, k: int) -> list[str]:
        raw, _ = await self.store.get(self.ref, shard_key(k))
        return [] if raw is None else list(json.loads(raw))

    async def all(self) -> list[str]:
        """Every id (one bulk read of the shards)."""
        component = self.store.store()
        items = await self.store.state.call(self.store.store_name, lambda: component.bulk_get(
            self.keys, self.metadata))
        ids: list[str] = []
        for item in items:
            if item.error:
                raise Internal(f"the instance index cannot be read: {item.error}",
                               where="workflows.index")
            if item.value:
                ids += json.loads(item.value)
        return ids

    async def page(self, token: str, size: int) -> tuple[list[str], str]:
        """Up to ``size`` ids (0: all) after ``token``, and the token of the next page
        ("" when there is none)."""
        if size <= 0 and not token:
            return await self.all(), ""
        k, last = _parse_token(token) if token else (0, "")
        page: list[str] = []
        while k < SHARDS:
            ids = await self.shard(k)
            start = bisect.bisect_right(ids, last) if last else 0
            room = size - len(page) if size > 0 else len(ids)
            page += ids[start:start + room]
            if size > 0 and len(page) == size:
                if start + room < len(ids):
                    return page, _token(k, page[-1])
                return page, await self._after(k + 1, page[-1])
            k, last = k + 1, ""
        return page, ""

    async def _after(self, k: int, last: str) -> str:
        """The token that resumes after shard ``k - 1`` if a later shard has an id."""
        for later in range(k, SHARDS):
            if await self.shard(later):
                return _token(later, "")
        return ""

    # ---- writing -----------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Move the ids of an index in the former single-key form into the shards, then
        delete it (under the etag read: another sidecar migrating at once is harmless, the
        adds are idempotent). The number of ids moved."""
        component = self.store.store()
        old = self.old_key
        got = await self.store.state.call(self.store.store_name, lambda: component.get(
            old, Consistency.UNSPECIFIED, self.metadata))
        if got is None:
            return 0
        ids = [str(i) for i in json.loads(got.value)]
        for instance_id in ids:
            await self.add(instance_id)
        remove = DeleteRequest(key=old, etag=got.etag, metadata=self.metadata)
        with contextlib.suppress(EtagMismatch):  # another sidecar migrated it meanwhile
            await self.store.state.call(self.store.store_name, lambda: component.multi(
                [remove], self.metadata))
        log.info("workflows: %d id(s) of the single-key instance index moved into %d shards",
                 len(ids), SHARDS)
        return len(ids)

    async def add(self, instance_id: str) -> None:
        await self._change(instance_id, add=True)

    async def remove(self, instance_id: str) -> None:
        await self._change(instance_id, add=False)

    async def _change(self, instance_id: str, *, add: bool) -> None:
        """A compare-and-set on the id's shard, retried when another sidecar wrote
        between the read and the write."""
        k = shard_of(instance_id)
        key = self.keys[k]
        component = self.store.store()
        state = self.store.state
        async with self._locks[k]:
            for _ in range(ATTEMPTS):
                got = await state.call(self.store.store_name, lambda: component.get(
                    key, Consistency.UNSPECIFIED, self.metadata))
                ids: list[str] = [] if got is None else list(json.loads(got.value))
                at = bisect.bisect_left(ids, instance_id)
                present = at < len(ids) and ids[at] == instance_id
                if add and not present:
                    ids.insert(at, instance_id)
                elif not add and present:
                    del ids[at]
                else:
                    return
                write = SetRequest(
                    key=key, value=json.dumps(ids).encode(), metadata=self.metadata,
                    etag=got.etag if got is not None else None,
                    concurrency=(Concurrency.UNSPECIFIED if got is not None
                                 else Concurrency.FIRST_WRITE))
                try:
                    await state.call(self.store.store_name,
                                     lambda w=write: component.multi(  # type: ignore[misc]
                                         [w], self.metadata))
                    return
                except EtagMismatch:
                    await asyncio.sleep(random.uniform(0.01, 0.05))
        log.warning("workflows: the instance index kept changing: %s not %s", instance_id,
                    "added" if add else "removed")
