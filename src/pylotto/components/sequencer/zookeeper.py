"""``zookeeper``: counters as znodes, shared by every sidecar using the same ensemble.

Metadata: ``zookeeperHosts``, ``basePath`` (default ``/pylotto``), ``sessionTimeout``,
``timeout`` (see :mod:`pylotto.components._backends.zookeeper_client`), ``segmentSize`` (ids
reserved per WEAK refill, default 1000), plus ``keyPrefix`` and ``biggerThan``.

Each key is the persistent znode ``<basePath>/sequences/<key>`` (percent-encoded) holding the
last id handed out, in decimal. Moving it is a compare-and-swap (:mod:`.cas`): the new value is
written with the version that was read, retried when another sidecar moved it first, so
concurrent callers get disjoint ids; ZooKeeper commits the write before the ids leave the
component.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from pylotto.components._backends.zookeeper_client import ZookeeperClient, ZookeeperSettings
from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import SegmentSettings
from pylotto.components.sequencer.cas import CasSequencer


class ZookeeperSequencerSettings(SegmentSettings, ZookeeperSettings):
    pass


async def _get(zk: Any, *, path: str) -> tuple[bytes, Any]:
    data, stat = await zk.get(path)
    return data, stat


async def _create(zk: Any, *, path: str, data: bytes) -> None:
    await zk.create(path, data)


async def _set(zk: Any, *, path: str, data: bytes, version: int) -> None:
    await zk.set(path, data, version)


class ZookeeperSequencer(CasSequencer):
    Settings = ZookeeperSequencerSettings
    settings: ZookeeperSequencerSettings

    def __init__(self, name: str, settings: ZookeeperSequencerSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
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

    async def swap(self, key: str, to: Callable[[int], int]) -> int | None:
        exc = self._exc
        path = "/sequences/" + quote(key, safe="")
        races = (exc.NoNode, exc.NodeExists, exc.BadVersion)
        try:
            data, stat = await self.client.call(partial(_get, path=path), passthrough=races)
        except exc.NoNode:
            wanted = to(0)
            try:
                await self.client.call(partial(_create, path=path, data=str(wanted).encode()),
                                       passthrough=races)
                return wanted
            except exc.NodeExists:
                return None
        current = int(data or b"0")
        wanted = to(current)
        if wanted == current:
            return current
        try:
            await self.client.call(partial(_set, path=path, data=str(wanted).encode(),
                                           version=int(stat.version)), passthrough=races)
            return wanted
        except (exc.BadVersion, exc.NoNode):
            return None
