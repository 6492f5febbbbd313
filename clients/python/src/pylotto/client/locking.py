"""``async with client.lock(store, resource, owner, expire=...)``: a distributed lock held for a
block, released at its end even when the block raises."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from types import TracebackType
from typing import TYPE_CHECKING

from pylotto.client.types import LockNotAcquired, LockStatus

if TYPE_CHECKING:
    from pylotto.client.aio import AsyncClient

log = logging.getLogger("pylotto.client")

RETRY_INTERVAL_SECONDS = 0.05
"""First wait between two tries while ``wait`` allows; doubled up to :data:`LONGEST_WAIT`."""
LONGEST_WAIT = 1.0


class Lock:
    """The lock ``resource`` of ``store``, taken by ``owner`` (a random one by default) for
    ``expire`` seconds. ``wait``: seconds to keep trying while another owner holds it (0:
    one try); :class:`LockNotAcquired` when it is still held. ``keep_alive``: renew it every
    third of ``expire`` while the block runs (for blocks that may outlast ``expire``)."""

    def __init__(self, client: AsyncClient, store: str, resource: str, owner: str | None,
                 *, expire: int, wait: float = 0.0, keep_alive: bool = False) -> None:
        if expire < 1:
            raise ValueError("expire must be at least 1 second")
        self._client = client
        self.store = store
        self.resource = resource
        self.owner = owner or str(uuid.uuid4())
        self.expire = expire
        self.wait = wait
        self.keep_alive = keep_alive
        self._renewing: asyncio.Task[None] | None = None

    async def acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        pause = RETRY_INTERVAL_SECONDS
        while not await self._client.try_lock(self.store, self.resource, self.owner,
                                              self.expire):
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockNotAcquired(self.store, self.resource)
            await asyncio.sleep(min(pause, left))
            pause = min(LONGEST_WAIT, pause * 2)
        if self.keep_alive:
            self._renewing = asyncio.create_task(self._renew())

    async def release(self) -> LockStatus:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
            self._renewing = None
        status = await self._client.unlock(self.store, self.resource, self.owner)
        if status is not LockStatus.SUCCESS:
            log.warning("lock %s/%s released by %s: %s (it had expired?)", self.store,
                        self.resource, self.owner, status.name)
        return status

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.expire / 3)
            status = await self._client.lock_keep_alive(self.store, self.resource,
                                                        self.owner, self.expire)
            if status is not LockStatus.SUCCESS:
                log.warning("lock %s/%s lost by %s: %s", self.store, self.resource,
                            self.owner, status.name)
                return

    async def __aenter__(self) -> Lock:
        await self.acquire()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.release()
