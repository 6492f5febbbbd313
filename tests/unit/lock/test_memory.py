"""The in-memory lock store on its own: sweeping expired leases."""

from __future__ import annotations

import time

import pytest

from pylotto.components.lock import memory
from pylotto.components.lock.base import LockStatus
from pylotto.components.lock.memory import MemoryLockStore
from tests.unit.lock.conftest import MakeStore


async def test_expired_leases_are_swept(make_store: MakeStore,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store = await make_store()
    assert isinstance(store, MemoryLockStore)
    for i in range(10):
        assert await store.try_lock(f"r{i}", "o", 1)
    later = time.monotonic() + 5
    store.clock = lambda: later
    monkeypatch.setattr(memory, "SWEEP_EVERY", 1)
    assert await store.try_lock("fresh", "o", 10)
    assert set(store._leases) == {"fresh"}
    assert await store.unlock("r0", "o") is LockStatus.LOCK_UNEXIST


async def test_released_lease_can_be_taken_at_once(make_store: MakeStore) -> None:
    store = await make_store()
    assert await store.try_lock("r", "a", 30)
    assert await store.unlock("r", "a") is LockStatus.SUCCESS
    assert await store.try_lock("r", "b", 30)
    assert await store.keep_alive("r", "b", 30) is LockStatus.SUCCESS
