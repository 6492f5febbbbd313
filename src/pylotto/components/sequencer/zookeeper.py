"""``zookeeper``: counters as znodes, shared by every sidecar using the same ensemble.

Metadata: ``zookeeperHosts``, ``basePath`` (default ``/pylotto``), ``sessionTimeout``,
``timeout`` (see :mod:`pylotto.components.zookeeper_client`), ``segmentSize`` (ids reserved
per WEAK refill, default 1000), plus ``keyPrefix`` and ``biggerThan``.

Each key is the persistent znode ``<basePath>/sequences/<key>`` (percent-encoded) holding the
last id handed out, in decimal. Moving it is a compare-and-swap: the new value is written with
the version that was read, retried when another sidecar moved it first, so concurrent callers
get disjoint ids; ZooKeeper commits the write before the ids leave the component.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.components.zookeeper_client import ZookeeperClient, ZookeeperSettings
from pylotto.errors import Unavailable
from pylotto.types import Metadata

MAX_ATTEMPTS = 100
LOCK_STRIPES = 64
"""In-sidecar locks keys are spread over (moves of one key never race each other)."""


class ZookeeperSequencerSettings(SegmentSettings, ZookeeperSettings):
    pass


async def _get(zk: Any, *, path: str) -> tuple[bytes, Any]:
    data, stat = await zk.get(path)
    return data, stat


async def _create(zk: Any, *, path: str, data: bytes) -> None:
    await zk.create(path, data)


async def _set(zk: Any, *, path: str, data: bytes, version: int) -> None:
    await zk.set(path, data, version)


class ZookeeperSequencer(SegmentSequencer):
    Settings = ZookeeperSequencerSettings
    settings: ZookeeperSequencerSettings
    features = frozenset({Feature.SEGMENT})

    def __init__(self, name: str, settings: ZookeeperSequencerSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self.client = ZookeeperClient(settings, f"sequencer store {name}")

    async def init(self) -> None:
        from aiozk import exc

        self._exc = exc
        await self.client.open()
        await self.client.call(lambda zk: zk.ensure_path("/sequences"))

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
        exc = self._exc
        path = "/sequences/" + quote(key, safe="")
        races = (exc.NoNode, exc.NodeExists, exc.BadVersion)
        for _ in range(MAX_ATTEMPTS):
            try:
                data, stat = await self.client.call(partial(_get, path=path),
                                                    passthrough=races)
            except exc.NoNode:
                wanted = to(0)
                try:
                    await self.client.call(partial(_create, path=path,
                                                   data=str(wanted).encode()), passthrough=races)
                    return wanted
                except exc.NodeExists:
                    continue
            current = int(data or b"0")
            wanted = to(current)
            if wanted == current:
                return current
            try:
                await self.client.call(partial(_set, path=path, data=str(wanted).encode(),
                                               version=int(stat.version)), passthrough=races)
                return wanted
            except (exc.BadVersion, exc.NoNode):
                continue
        raise Unavailable(f"sequencer store {self.name}: key {key!r} is too contended "
                          f"({MAX_ATTEMPTS} attempts)")

    async def next_id(self, key: str, metadata: Metadata) -> int:
        return await self._move(key, lambda current: current + 1)

    async def get_segment(self, key: str, size: int) -> Segment:
        last = await self._move(key, lambda current: current + size)
        return Segment(last - size + 1, last)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        await self._move(key, lambda current: max(current, floor))
