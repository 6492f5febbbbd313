"""The scheduler's records in a state store, through the state capability (its key rules,
resiliency and metrics), every change an etag compare-and-set.

Per app id (``<base>`` is ``_scheduler.<app>.``):

- ``SHARDS`` (64) **index shards** ``<base>index.<k>``: the jobs whose name hashes to shard
  ``k`` (CRC-32 of the UTF-8 name, modulo 64), as JSON name → generation. Each shard is its
  own record, CAS'd on its own: a schedule or a batch of finished jobs rewrites only the
  shards of its names (≈ 1/64 of the index at 100,000 jobs, about 90 KB), and writers of
  other shards never collide.
- one **stamp** per shard, ``<base>stamp.<k>``: a token written (without CAS, a fresh one
  each time) **after** every write of its shard. A sidecar reads the 64 small stamps in one
  bulk get each poll and re-reads only the shards whose stamp changed: a shard read after
  its new stamp is at least as new as the write that stamped it. A writer that dies between
  its shard write and its stamp leaves the change unseen until the shard's next stamp, or
  the full re-read every sidecar makes each ``FULL_READ_SECONDS``.
- one **job record** per job (``<base>job.<name>``, ``|`` and ``%`` percent-encoded, since a
  state key may not contain ``||``).

Sidecars of one app id share them: a sidecar learns of jobs scheduled elsewhere from the
index, and claims a trigger by writing the job record with the etag it read (only one writer
wins).

**Upgrade**: the former layout had one index record, ``<base>index``, with every name.
:meth:`SchedulerStore.migrate` moves its names into the shards, then deletes it under the
etag it read (an old sidecar that wrote it meanwhile makes it go again), and
:meth:`SchedulerStore.index` reads it too while it exists, so no job of the former layout is
lost.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pylotto.capabilities.scheduler.job import JobRecord
from pylotto.capabilities.state import StateCapability, StateItem
from pylotto.components.state.base import BatchStateStore, Concurrency
from pylotto.core.errors import EtagMismatch, Unavailable

SHARDS = 64
"""Index shards per app id (fixed: changing it would move names between shards)."""
READ_CHUNK = 500
"""Keys per bulk get (a 100,000-key read goes out in chunks)."""
SHARD_WRITES = 4
"""Shards rewritten together (one bulk get, one bulk save) by one change, one such group
after the other (at 100,000 jobs each is ≈ 90 KB of JSON to parse and write: all 64 at once
held the event loop ≈ 100 ms, bench/scheduler.py)."""


Stamped = Callable[[int, str | None, str], None]
"""Told of each shard stamp a change wrote: the shard, the stamp it replaced (None: none),
the new one."""


def _quote(name: str) -> str:
    return name.replace("%", "%25").replace("|", "%7C")


def shard_of(name: str) -> int:
    return zlib.crc32(name.encode()) % SHARDS


def _versioned_item(key: str, value: bytes, etag: str | None) -> StateItem:
    """A save of ``key`` over the version read (none: only if there still is none)."""
    return StateItem(key, value, etag=etag, concurrency=Concurrency.FIRST_WRITE
                     if etag is None else Concurrency.UNSPECIFIED)


@dataclass(frozen=True, slots=True)
class Versioned:
    """A job record and the etag it was read with."""

    record: JobRecord
    etag: str


class SchedulerStore:
    """Index shards, their stamps and job records of app ``app_id`` in state store ``store``."""

    def __init__(self, state: StateCapability, store: str, app_id: str,
                 key_base: str | None = None) -> None:
        """``key_base``: the prefix of every key (default ``_scheduler.<app_id>.``; actor
        reminders keep theirs apart, under ``_scheduler.<app_id>.actors.``)."""
        self.state, self.store = state, store
        self.base = f"_scheduler.{app_id}." if key_base is None else key_base
        self.legacy_index_key = self.base + "index"
        """The former layout's single index (read and migrated, never written)."""
        self.shard_keys = [f"{self.base}index.{k}" for k in range(SHARDS)]
        self.batches = isinstance(state.components.get(store), BatchStateStore)
        """Whether a bulk save (or delete) is one all-or-nothing compare-and-set of every
        item: then :meth:`write_many` writes a batch of records at once."""
        self.stamp_keys = [f"{self.base}stamp.{k}" for k in range(SHARDS)]

    def job_key(self, name: str) -> str:
        return self.base + "job." + _quote(name)

    async def _bulk(self, keys: list[str]) -> list[tuple[bytes, str | None]]:
        """Value and etag of each key (b"": none), in chunks of ``READ_CHUNK``."""
        out: list[tuple[bytes, str | None]] = []
        for at in range(0, len(keys), READ_CHUNK):
            items = await self.state.get_bulk_state(self.store, keys[at:at + READ_CHUNK])
            for item in items:
                if item.error:
                    raise Unavailable(f"cannot read {item.key}: {item.error}",
                                      where="jobs.store")
                out.append((item.value or b"", item.etag))
        return out

    # ---- the index ---------------------------------------------------------------------------

    async def stamps(self) -> list[str | None]:
        """Each shard's stamp (None: never written), in one bulk get."""
        return [value.decode() if value else None
                for value, _ in await self._bulk(self.stamp_keys)]

    async def shards(self, which: Iterable[int]) -> dict[int, dict[str, str]]:
        """The names → generations of each shard asked for."""
        chosen = list(which)
        read = await self._bulk([self.shard_keys[k] for k in chosen])
        return {k: json.loads(value) if value else {}
                for k, (value, _) in zip(chosen, read, strict=True)}

    async def index(self) -> dict[str, str]:
        """Every listed job's name → generation (the former single index included, while
        it is there)."""
        names: dict[str, str] = {}
        legacy, _ = await self._legacy()
        names.update(legacy)
        for shard in (await self.shards(range(SHARDS))).values():
            names.update(shard)
        return names

    async def listed(self, name: str) -> str | None:
        """The generation the index lists ``name`` with (None: not listed)."""
        k = shard_of(name)
        found = (await self.shards([k]))[k].get(name)
        if found is None:
            found = (await self._legacy())[0].get(name)
        return found

    async def _legacy(self) -> tuple[dict[str, str], str | None]:
        got = await self.state.get_state(self.store, self.legacy_index_key)
        return (json.loads(got.value) if got.value else {}), got.etag

    async def change_shard(self, k: int, change: Callable[[dict[str, str]], bool],
                           stamped: Stamped | None = None) -> None:
        """Apply ``change`` to shard ``k`` (it says whether it changed anything) until no
        other writer came in between, then stamp the shard: a fresh stamp over the one read,
        under its etag (``stamped`` is told both), so no other writer's stamp between that
        read and this write is lost."""
        key = self.shard_keys[k]
        while True:
            got = await self.state.get_state(self.store, key)
            names: dict[str, str] = json.loads(got.value) if got.value else {}
            if not change(names):
                return
            item = StateItem(key, json.dumps(names, separators=(",", ":")).encode(),
                             etag=got.etag,
                             concurrency=Concurrency.FIRST_WRITE if got.etag is None
                             else Concurrency.UNSPECIFIED)
            try:
                await self.state.save_state(self.store, [item])
                break
            except EtagMismatch:
                await asyncio.sleep(random.uniform(0, 0.01))  # another writer: let it pass
        await self._stamp(k, stamped)

    async def _stamp(self, k: int, stamped: Stamped | None) -> None:
        key = self.stamp_keys[k]
        while True:
            got = await self.state.get_state(self.store, key)
            stamp = uuid.uuid4().hex
            try:
                await self.state.save_state(self.store, [StateItem(
                    key, stamp.encode(), etag=got.etag,
                    concurrency=Concurrency.FIRST_WRITE if got.etag is None
                    else Concurrency.UNSPECIFIED)])
            except EtagMismatch:
                continue  # another writer stamped meanwhile: stamp after it
            if stamped is not None:
                stamped(k, got.value.decode() if got.value else None, stamp)
            return

    async def change_shards(self, changes: dict[int, Callable[[dict[str, str]], bool]],
                            stamped: Stamped | None = None) -> None:
        """:meth:`change_shard` for several shards: on a store whose bulk save is one
        compare-and-set of every item (:attr:`batches`), one bulk get of the shards, one bulk
        save of those changed under the etags read, then their stamps likewise; another
        writer's change in between (the bulk save fails as a whole) sends them shard by
        shard (each change is applied to the shard as read again)."""
        if not self.batches or len(changes) == 1:  # one shard (a schedule): as it is
            for k, change in changes.items():
                await self.change_shard(k, change, stamped)
            return
        chosen = list(changes)
        read = await self._bulk([self.shard_keys[k] for k in chosen])
        items: list[StateItem] = []
        changed: list[int] = []
        for k, (value, etag) in zip(chosen, read, strict=True):
            names: dict[str, str] = json.loads(value) if value else {}
            if changes[k](names):
                items.append(_versioned_item(self.shard_keys[k], json.dumps(
                    names, separators=(",", ":")).encode(), etag))
                changed.append(k)
        if not items:
            return
        try:
            await self.state.save_state(self.store, items)
        except EtagMismatch:
            for k in changed:
                await self.change_shard(k, changes[k], stamped)
            return
        stamps = await self._bulk([self.stamp_keys[k] for k in changed])
        fresh = [uuid.uuid4().hex for _ in changed]
        try:
            await self.state.save_state(self.store, [
                _versioned_item(self.stamp_keys[k], stamp.encode(), etag)
                for k, stamp, (_, etag) in zip(changed, fresh, stamps, strict=True)])
        except EtagMismatch:  # another writer stamped one meanwhile: stamp after it
            for k in changed:
                await self._stamp(k, stamped)
            return
        if stamped is not None:
            for k, stamp, (previous, _) in zip(changed, fresh, stamps, strict=True):
                stamped(k, previous.decode() if previous else None, stamp)

    async def _per_shard(self, names: Iterable[str],
                         change: Callable[[list[str]], Callable[[dict[str, str]], bool]],
                         stamped: Stamped | None = None) -> None:
        by_shard: dict[int, list[str]] = {}
        for name in names:
            by_shard.setdefault(shard_of(name), []).append(name)
        shards = sorted(by_shard)
        for at in range(0, len(shards), SHARD_WRITES):
            await self.change_shards({k: change(by_shard[k])
                                      for k in shards[at:at + SHARD_WRITES]}, stamped)

    async def migrate(self) -> None:
        """Move the former single index's names into the shards (a name a shard lists
        already keeps the shard's generation), then delete it under the etag read."""
        while True:
            legacy, etag = await self._legacy()
            if etag is None and not legacy:
                return
            await self.enlist_many(legacy, keep=True)
            try:
                await self.state.delete_state(self.store, StateItem(self.legacy_index_key,
                                                                    etag=etag))
                return
            except EtagMismatch:  # an older sidecar wrote it meanwhile: move that too
                continue

    # ---- job records -------------------------------------------------------------------------

    async def read(self, name: str) -> Versioned | None:
        got = await self.state.get_state(self.store, self.job_key(name))
        if not got.value or got.etag is None:
            return None
        return Versioned(JobRecord.loads(got.value), got.etag)

    async def read_versioned(self, names: list[str]) -> dict[str, Versioned | None]:
        """The record and etag of each name (None: there is none), in bulk gets."""
        read = await self._bulk([self.job_key(n) for n in names])
        return {name: Versioned(JobRecord.loads(value), etag)
                if value and etag is not None else None
                for name, (value, etag) in zip(names, read, strict=True)}

    async def write_many(self, writes: list[tuple[Versioned, JobRecord | None]]
                         ) -> list[tuple[Versioned, JobRecord | None]]:
        """Write each record over the one read (None: delete it), each under the etag read:
        the saves in one all-or-nothing bulk save, then the deletes in one bulk delete.
        Returns the writes not applied because an etag did not match (none: all were; the
        deletes alone when the save went through), the items of ``writes`` themselves.
        Call only when :attr:`batches`."""
        saves = [write for write in writes if write[1] is not None]
        deletes = [write for write in writes if write[1] is None]  # the very items given
        if saves:
            try:
                await self.state.save_state(self.store, [
                    StateItem(self.job_key(after.spec.name), after.dumps(), etag=current.etag)
                    for current, after in saves if after is not None])
            except EtagMismatch:
                return writes
        if deletes:
            try:
                await self.state.delete_bulk_state(self.store, [
                    StateItem(self.job_key(current.record.spec.name), etag=current.etag)
                    for current, _ in deletes])
            except EtagMismatch:
                return deletes
        return []

    async def create(self, record: JobRecord) -> bool:
        """Write a new job record; False when one exists already."""
        try:
            await self.state.save_state(self.store, [StateItem(
                self.job_key(record.spec.name), record.dumps(),
                concurrency=Concurrency.FIRST_WRITE)])
        except EtagMismatch:
            return False
        return True

    async def put(self, record: JobRecord) -> None:
        """Write ``record`` whatever is there (under the etag read: some stores refuse a
        save without one over a key first written with first-write)."""
        while True:
            current = await self.read(record.spec.name)
            if current is None:
                if await self.create(record):
                    return
            elif await self.replace(current, record):
                return

    async def replace(self, current: Versioned, record: JobRecord) -> bool:
        """Write ``record`` over ``current`` if nobody changed it since; False otherwise."""
        try:
            await self.state.save_state(self.store, [StateItem(
                self.job_key(record.spec.name), record.dumps(), etag=current.etag)])
        except EtagMismatch:
            return False
        return True

    async def remove(self, current: Versioned) -> bool:
        """Delete ``current`` if nobody changed it since (the index keeps its name until
        :meth:`unlist_many`: finished jobs leave it in batches, not one write each)."""
        try:
            await self.state.delete_state(self.store, StateItem(
                self.job_key(current.record.spec.name), etag=current.etag))
        except EtagMismatch:
            return False
        return True

    async def delete(self, name: str) -> None:
        await self.unlist(name)
        await self.state.delete_state(self.store, StateItem(self.job_key(name)))

    async def unlist(self, name: str, generation: str | None = None) -> None:
        await self.unlist_many({name: generation})

    async def unlist_many(self, gone: dict[str, str | None],
                          stamped: Stamped | None = None) -> None:
        """Drop each name from the index (only if still of the generation given, when one
        is): one write per shard touched (``stamped``: see :meth:`change_shard`)."""
        def change(group: list[str]) -> Callable[[dict[str, str]], bool]:
            def drop(names: dict[str, str]) -> bool:
                dropped = [n for n in group if n in names
                           and (gone[n] is None or names[n] == gone[n])]
                for name in dropped:
                    del names[name]
                return bool(dropped)
            return drop

        await self._per_shard(gone, change, stamped)

    async def enlist(self, name: str, generation: str, stamped: Stamped | None = None) -> None:
        await self.enlist_many({name: generation}, stamped=stamped)

    async def enlist_many(self, listed: dict[str, str], keep: bool = False,
                          stamped: Stamped | None = None) -> None:
        """List each name with its generation (``keep``: a name listed already keeps its
        own): one write per shard touched (``stamped``: see :meth:`change_shard`)."""
        def change(group: list[str]) -> Callable[[dict[str, str]], bool]:
            def add(names: dict[str, str]) -> bool:
                changed = False
                for name in group:
                    if names.get(name) != listed[name] and not (keep and name in names):
                        names[name] = listed[name]
                        changed = True
                return changed
            return add

        await self._per_shard(listed, change, stamped)

    async def read_many(self, names: list[str]) -> dict[str, JobRecord | None]:
        """The record of each name (None: there is none)."""
        read = await self._bulk([self.job_key(n) for n in names])
        return {name: JobRecord.loads(value) if value else None
                for name, (value, _) in zip(names, read, strict=True)}


