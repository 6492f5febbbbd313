"""``etcd``: counters on etcd, shared by every sidecar using the same cluster.

Metadata: ``endpoints``, ``username``, ``password``, ``keyPrefixPath`` (default ``pylotto``),
``timeout`` (see :mod:`pylotto.components.etcd_client`), ``segmentSize`` (ids reserved per
WEAK refill, default 1000), plus ``keyPrefix`` and ``biggerThan``.

Each key ``<keyPrefixPath>/<key>`` holds the last id handed out, in decimal. Moving it is a
compare-and-swap transaction on the key's ``mod_revision`` (0 when absent), retried when
another sidecar moved it first: concurrent callers get disjoint ids, and a move is committed
by etcd's Raft log before the ids leave the component.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pylotto.components.base import ComponentContext
from pylotto.components.etcd_client import EtcdClient, EtcdSettings
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.errors import Unavailable
from pylotto.types import Metadata

MAX_ATTEMPTS = 100
"""Compare-and-swap rounds before a hot key is reported (Unavailable)."""
LOCK_STRIPES = 64
"""In-sidecar locks keys are spread over (moves of one key never race each other)."""


class EtcdSequencerSettings(SegmentSettings, EtcdSettings):
    pass


class EtcdSequencer(SegmentSequencer):
    Settings = EtcdSequencerSettings
    settings: EtcdSequencerSettings
    features = frozenset({Feature.SEGMENT})

    def __init__(self, name: str, settings: EtcdSequencerSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self.client = EtcdClient(settings, f"sequencer store {name}")

    async def init(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    async def _move(self, key: str, to: Callable[[int], int]) -> int:
        """Set the counter to ``to(current)`` atomically; the new value. Moves of one key are
        serialised within the sidecar, so only other sidecars can make a swap fail."""
        async with self._locks[hash(key) % len(self._locks)]:
            return await self._swap(key, to)

    async def _swap(self, key: str, to: Callable[[int], int]) -> int:
        client = self.client
        name = client.key(key)
        for _ in range(MAX_ATTEMPTS):
            reply = await client.range(name)
            current, revision = (int(reply.kvs[0].value), reply.kvs[0].mod_revision) \
                if reply.kvs else (0, 0)
            wanted = to(current)
            if wanted == current:
                return current
            swapped = await client.txn([client.compare(name, "MOD", revision)],
                                       [client.put(name, str(wanted).encode())])
            if swapped.succeeded:
                return wanted
        raise Unavailable(f"sequencer store {self.name}: key {key!r} is too contended "
                          f"({MAX_ATTEMPTS} attempts)")

    async def next_id(self, key: str, metadata: Metadata) -> int:
        return await self._move(key, lambda current: current + 1)

    async def get_segment(self, key: str, size: int) -> Segment:
        last = await self._move(key, lambda current: current + size)
        return Segment(last - size + 1, last)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        await self._move(key, lambda current: max(current, floor))
