"""``redis``: a registry of sidecars in Redis.

Metadata: the connection keys of every Redis component (``redisHost``, ``redisPassword``...,
see :mod:`pylotto.components._backends.redis_client`) and ``ttl`` (default ``10s``).

Each sidecar with an app id keeps its address in the hash ``pylotto-apps:<app id>`` (field: the
address, value: when the entry expires), refreshed every ``ttl / 3``. Resolving reads the hash
and keeps the entries that have not expired, so a sidecar that died leaves the rotation after
``ttl`` at most; a sidecar that stops removes its entry at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from pylotto.components._backends.redis_client import RedisClient, RedisSettings
from pylotto.core.errors import PylottoError
from pylotto.core.metadata import Duration, decode
from pylotto.core.tasks import stop_task
from pylotto.resolution.base import Resolver

log = logging.getLogger("pylotto.resolution.redis")


class RedisRegistrySettings(RedisSettings):
    ttl: Duration = Field(10.0, gt=0)


def _key(app_id: str) -> str:
    return f"pylotto-apps:{app_id}"


class RedisResolver(Resolver):
    announces = True

    def __init__(self, metadata: Mapping[str, Any]) -> None:
        self.settings = decode(RedisRegistrySettings, metadata, component="name_resolution")
        self.client = RedisClient(self.settings, "name resolution")
        self._heartbeat: asyncio.Task[None] | None = None
        self._entry: tuple[str, str] | None = None

    async def start(self, app_id: str, address: str) -> None:
        await self.client.open()
        if app_id:
            self._entry = (app_id, address)
            await self._register()
            self._heartbeat = asyncio.create_task(self._beat())

    async def _register(self) -> None:
        assert self._entry is not None
        app_id, address = self._entry
        expires = time.time() + self.settings.ttl
        await self.client.call(lambda r: r.hset(_key(app_id), address, str(expires)))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ttl / 3)
            try:
                await self._register()
            except PylottoError as exc:
                log.warning("name resolution: heartbeat failed: %s", exc.message)

    async def stop(self) -> None:
        if self._heartbeat is not None:
            await stop_task(self._heartbeat)
        if self._entry is not None:
            app_id, address = self._entry
            with contextlib.suppress(PylottoError):
                await self.client.call(lambda r: r.hdel(_key(app_id), address))
        await self.client.close()

    async def resolve(self, app_id: str) -> list[str]:
        entries = await self.client.call(lambda r: r.hgetall(_key(app_id)))
        now = time.time()
        return sorted(address.decode() for address, expires in entries.items()
                      if float(expires) > now)
