"""``in-memory``: locks in the sidecar's memory (one process only; lost on restart).

Each verb runs without awaiting between its check and its update, so concurrent coroutines of
the event loop see it as atomic: of many contenders exactly one wins. Expiry uses the monotonic
clock; expired leases are ignored at once and swept from memory every ``SWEEP_EVERY`` writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pylotto.components.base import ComponentContext
from pylotto.components.lock.base import LockSettings, LockStatus, LockStore

SWEEP_EVERY = 1024
"""Writes between two sweeps of expired leases."""


@dataclass(slots=True)
class _Lease:
    owner: str
    expires_at: float


class MemoryLockStore(LockStore):
    per_process = True
    def __init__(self, name: str, settings: LockSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self._leases: dict[str, _Lease] = {}
        self._writes = 0
        self.clock: Callable[[], float] = time.monotonic

    async def close(self) -> None:
        self._leases.clear()

    def _live(self, resource_id: str, now: float) -> _Lease | None:
        lease = self._leases.get(resource_id)
        if lease is not None and lease.expires_at <= now:
            del self._leases[resource_id]
            return None
        return lease

    def _count_write(self, now: float) -> None:
        self._writes += 1
        if self._writes >= SWEEP_EVERY:
            self._writes = 0
            for resource_id in [r for r, lease in self._leases.items() if lease.expires_at <= now]:
                del self._leases[resource_id]

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        now = self.clock()
        if self._live(resource_id, now) is not None:
            return False
        self._leases[resource_id] = _Lease(owner, now + expire_seconds)
        self._count_write(now)
        return True

    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        lease = self._live(resource_id, self.clock())
        if lease is None:
            return LockStatus.LOCK_UNEXIST
        if lease.owner != owner:
            return LockStatus.LOCK_BELONG_TO_OTHERS
        del self._leases[resource_id]
        return LockStatus.SUCCESS

    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        now = self.clock()
        lease = self._live(resource_id, now)
        if lease is None:
            return LockStatus.LOCK_UNEXIST
        if lease.owner != owner:
            return LockStatus.LOCK_BELONG_TO_OTHERS
        lease.expires_at = now + expire_seconds
        return LockStatus.SUCCESS
