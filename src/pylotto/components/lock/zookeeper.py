"""``zookeeper``: leases as ephemeral znodes, shared by every sidecar using the same ensemble.

Metadata: ``zookeeperHosts``, ``basePath`` (default ``/pylotto``), ``sessionTimeout``,
``timeout`` (see :mod:`pylotto.components._backends.zookeeper_client`), plus ``keyPrefix``.

A lock is the ephemeral znode ``<basePath>/locks/<resource>`` (the resource percent-encoded)
holding ``{"owner", "expires"}``. ZooKeeper's create is atomic: of any number of contenders
exactly one creates it. An ephemeral node lives as long as the session of the sidecar that
created it, so ZooKeeper frees the locks of a sidecar that died (after ``sessionTimeout``);
the lock's own expiry is the ``expires`` time in the node (milliseconds, the sidecars' clocks:
keep them in sync): a node past it counts as absent, and is replaced with a delete guarded by
the node's version. ``unlock`` and ``keep_alive`` read the node, compare the owner, and delete
or rewrite it with the version they read, so a concurrent change makes them look again.
"""

from __future__ import annotations

import contextlib
import json
import time
from functools import partial
from typing import Any
from urllib.parse import quote

from pylotto.components._backends.zookeeper_client import ZookeeperClient, ZookeeperSettings
from pylotto.components.base import ComponentContext
from pylotto.components.lock.base import LockSettings, LockStatus, LockStore
from pylotto.core.errors import Unavailable

ATTEMPTS = 10
"""Rounds of read-compare-write before a contended node is reported."""


class ZookeeperLockSettings(LockSettings, ZookeeperSettings):
    pass


class ZookeeperLockStore(LockStore):
    Settings = ZookeeperLockSettings
    settings: ZookeeperLockSettings

    def __init__(self, name: str, settings: ZookeeperLockSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = ZookeeperClient(settings, f"lock store {name}")

    async def init(self) -> None:
        from aiozk import exc

        self._exc = exc
        await self.client.open()
        await self.client.call(lambda zk: zk.ensure_path("/locks"))

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    @staticmethod
    def _path(resource_id: str) -> str:
        return "/locks/" + quote(resource_id, safe="")

    @staticmethod
    def _data(owner: str, expire_seconds: int) -> bytes:
        expires = int(time.time() * 1000) + expire_seconds * 1000
        return json.dumps({"owner": owner, "expires": expires}).encode()

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        exc = self._exc
        path = self._path(resource_id)
        for _ in range(ATTEMPTS):
            try:
                await self.client.call(
                    lambda zk: zk.create(path, self._data(owner, expire_seconds),
                                         ephemeral=True),
                    passthrough=(exc.NodeExists,))
                return True
            except exc.NodeExists:
                pass
            try:
                data, stat = await self.client.call(lambda zk: zk.get(path),
                                                    passthrough=(exc.NoNode,))
            except exc.NoNode:
                continue  # released meanwhile: try again
            if json.loads(data or b"{}").get("expires", 0) > time.time() * 1000:
                return False
            # expired: remove it (only if nobody renewed it meanwhile) and try again
            with contextlib.suppress(exc.NoNode, exc.BadVersion):
                await self._delete(path, int(stat.version))
        raise Unavailable(f"lock store {self.name}: resource {resource_id!r} is too contended")

    async def _delete(self, path: str, version: int) -> None:
        """Delete ``path`` only while it still has ``version`` (NoNode / BadVersion if not)."""
        exc = self._exc
        await self.client.call(partial(_delete, path=path, version=version),
                               passthrough=(exc.NoNode, exc.BadVersion))

    async def _owned(self, resource_id: str, owner: str) -> tuple[str, int] | LockStatus:
        """(path, version) of ``owner``'s live lease, or the status explaining why not."""
        exc = self._exc
        path = self._path(resource_id)
        try:
            data, stat = await self.client.call(lambda zk: zk.get(path),
                                                passthrough=(exc.NoNode,))
        except exc.NoNode:
            return LockStatus.LOCK_UNEXIST
        lease = json.loads(data or b"{}")
        if lease.get("expires", 0) <= time.time() * 1000:
            return LockStatus.LOCK_UNEXIST
        if lease.get("owner") != owner:
            return LockStatus.LOCK_BELONG_TO_OTHERS
        return path, int(stat.version)

    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        exc = self._exc
        for _ in range(ATTEMPTS):
            owned = await self._owned(resource_id, owner)
            if isinstance(owned, LockStatus):
                return owned
            path, version = owned
            try:
                await self._delete(path, version)
                return LockStatus.SUCCESS
            except (exc.NoNode, exc.BadVersion):
                continue  # changed meanwhile: look again
        raise Unavailable(f"lock store {self.name}: resource {resource_id!r} is too contended")

    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        exc = self._exc
        for _ in range(ATTEMPTS):
            owned = await self._owned(resource_id, owner)
            if isinstance(owned, LockStatus):
                return owned
            path, version = owned
            try:
                data = self._data(owner, expire_seconds)
                await self.client.call(partial(_set, path=path, data=data, version=version),
                                       passthrough=(exc.NoNode, exc.BadVersion))
                return LockStatus.SUCCESS
            except (exc.NoNode, exc.BadVersion):
                continue
        raise Unavailable(f"lock store {self.name}: resource {resource_id!r} is too contended")


async def _delete(zk: Any, *, path: str, version: int) -> None:
    from aiozk import protocol

    await zk.send(protocol.DeleteRequest(path=zk.normalize_path(path), version=version))


async def _set(zk: Any, *, path: str, data: bytes, version: int) -> None:
    await zk.set(path, data, version)
