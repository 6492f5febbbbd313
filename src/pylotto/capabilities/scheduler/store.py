"""The scheduler's records in a state store, through the state capability (its key rules,
resiliency and metrics), every change an etag compare-and-set.

Per app id two kinds of record: the **index** (``_scheduler.<app>.index``: every job's name →
its generation) and one **job record** per job (``_scheduler.<app>.job.<name>``, ``|`` and
``%`` percent-encoded, since a state key may not contain ``||``). Sidecars of one app id share
them: a sidecar learns of jobs scheduled elsewhere from the index, and claims a trigger by
writing the job record with the etag it read (only one writer wins).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from pylotto.capabilities.scheduler.job import JobRecord
from pylotto.capabilities.state import StateCapability, StateItem
from pylotto.components.state.base import Concurrency
from pylotto.core.errors import EtagMismatch


def _quote(name: str) -> str:
    return name.replace("%", "%25").replace("|", "%7C")


@dataclass(frozen=True, slots=True)
class Versioned:
    """A job record and the etag it was read with."""

    record: JobRecord
    etag: str


class SchedulerStore:
    """Index and job records of app ``app_id`` in state store ``store``."""

    def __init__(self, state: StateCapability, store: str, app_id: str) -> None:
        self.state, self.store = state, store
        self.base = f"_scheduler.{app_id}."
        self.index_key = self.base + "index"

    def job_key(self, name: str) -> str:
        return self.base + "job." + _quote(name)

    # ---- the index ---------------------------------------------------------------------------

    async def index(self) -> tuple[dict[str, str], str | None]:
        got = await self.state.get_state(self.store, self.index_key)
        names: dict[str, str] = json.loads(got.value) if got.value else {}
        return names, got.etag

    async def change_index(self, change: Callable[[dict[str, str]], bool]) -> None:
        """Apply ``change`` (which says whether it changed anything) until no other writer
        came in between."""
        while True:
            names, etag = await self.index()
            if not change(names):
                return
            item = StateItem(self.index_key, json.dumps(names, separators=(",", ":")).encode(),
                             etag=etag,
                             concurrency=Concurrency.FIRST_WRITE if etag is None
                             else Concurrency.UNSPECIFIED)
            try:
                await self.state.save_state(self.store, [item])
                return
            except EtagMismatch:
                await asyncio.sleep(random.uniform(0, 0.01))  # another writer: let it pass

    # ---- job records -------------------------------------------------------------------------

    async def read(self, name: str) -> Versioned | None:
        got = await self.state.get_state(self.store, self.job_key(name))
        if not got.value or got.etag is None:
            return None
        return Versioned(JobRecord.loads(got.value), got.etag)

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

    async def unlist_many(self, gone: dict[str, str | None]) -> None:
        """Drop each name from the index (only if still of the generation given, when one
        is), in one write."""
        def drop(names: dict[str, str]) -> bool:
            dropped = [n for n, gen in gone.items()
                       if n in names and (gen is None or names[n] == gen)]
            for name in dropped:
                del names[name]
            return bool(dropped)

        await self.change_index(drop)

    async def enlist(self, name: str, generation: str) -> None:
        def add(names: dict[str, str]) -> bool:
            if names.get(name) == generation:
                return False
            names[name] = generation
            return True

        await self.change_index(add)

    async def read_many(self, names: list[str]) -> dict[str, JobRecord | None]:
        """The record of each name (None: there is none)."""
        items = await self.state.get_bulk_state(self.store, [self.job_key(n) for n in names])
        return {name: JobRecord.loads(item.value) if item.value else None
                for name, item in zip(names, items, strict=True)}


