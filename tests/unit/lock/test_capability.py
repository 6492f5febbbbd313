"""The lock API: validation order and codes, key namespacing, statuses, expiry, keep-alive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.lock import LockCapability
from pylotto.components.base import ComponentContext
from pylotto.components.lock.base import LockSettings, LockStatus, LockStore
from pylotto.components.lock.memory import MemoryLockStore
from pylotto.config.model import AppConfig
from pylotto.core.errors import (
    ComponentNotFound,
    ConfigError,
    InvalidArgument,
    NotConfigured,
    Unavailable,
)
from pylotto.core.metadata import decode
from tests.unit.lock.conftest import MakeStore, capability


class RecordingStore(MemoryLockStore):
    """The in-memory store, remembering the keys it was handed."""

    def __init__(self, name: str, settings: LockSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.keys: list[str] = []

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        self.keys.append(resource_id)
        return await super().try_lock(resource_id, owner, expire_seconds)


class BrokenStore(MemoryLockStore):
    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        raise Unavailable("backend down")


def _recording(key_prefix: str = "appid") -> RecordingStore:
    return RecordingStore("lock", decode(LockSettings, {"keyPrefix": key_prefix}, component="l"),
                          ComponentContext(app_id="app", data_dir=Path("/nonexistent")))


# ---- validation ---------------------------------------------------------------------------


async def test_nothing_configured_comes_first() -> None:
    empty = LockCapability(ComponentSet("lock store", {}),
                           RuntimeContext(AppConfig(app_id="a"), Path("/x")))
    with pytest.raises(NotConfigured, match="lock store is not configured"):
        await empty.try_lock("lock", "", "", 0)
    with pytest.raises(NotConfigured):
        await empty.unlock("lock", "r", "o")
    with pytest.raises(NotConfigured):
        await empty.keep_alive("lock", "r", "o", 1)


async def test_validation_order_and_messages(locks: LockCapability) -> None:
    with pytest.raises(InvalidArgument, match="ResourceId is empty in lock store nope"):
        await locks.try_lock("nope", "", "", 0)
    with pytest.raises(InvalidArgument, match="LockOwner is empty in lock store nope"):
        await locks.try_lock("nope", "r", "", 0)
    with pytest.raises(InvalidArgument, match="Expire is not positive in lock store nope"):
        await locks.try_lock("nope", "r", "o", 0)
    with pytest.raises(InvalidArgument, match="Expire is not positive"):
        await locks.try_lock("lock", "r", "o", -5)
    with pytest.raises(ComponentNotFound, match="lock store nope is not found"):
        await locks.try_lock("nope", "r", "o", 10)
    with pytest.raises(InvalidArgument, match="can't contain"):
        await locks.try_lock("lock", "a||b", "o", 10)


async def test_unlock_and_keep_alive_validate_too(locks: LockCapability) -> None:
    with pytest.raises(InvalidArgument, match="ResourceId is empty"):
        await locks.unlock("lock", "", "o")
    with pytest.raises(InvalidArgument, match="LockOwner is empty"):
        await locks.unlock("lock", "r", "")
    with pytest.raises(ComponentNotFound):
        await locks.unlock("nope", "r", "o")
    with pytest.raises(InvalidArgument, match="Expire is not positive"):
        await locks.keep_alive("lock", "r", "o", 0)
    with pytest.raises(InvalidArgument, match="LockOwner is empty"):
        await locks.keep_alive("lock", "r", "", 5)
    with pytest.raises(ComponentNotFound):
        await locks.keep_alive("nope", "r", "o", 5)


# ---- key namespacing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "app_id", "expected"),
    [
        ("appid", "app", "lock|||app||res"),
        ("appid", "", "lock|||res"),
        ("none", "app", "lock|||res"),
        ("name", "app", "lock|||lock||res"),
        ("mine", "app", "lock|||mine||res"),
    ],
)
async def test_stored_key(strategy: str, app_id: str, expected: str) -> None:
    store = _recording(strategy)
    assert await capability(store, app_id=app_id).try_lock("lock", "res", "o", 10)
    assert store.keys == [expected]


async def test_default_prefix_is_appid() -> None:
    assert decode(LockSettings, {}, component="lock.x").key_prefix == "appid"


async def test_apps_do_not_share_locks_unless_prefix_none(make_store: MakeStore) -> None:
    shared = await make_store()
    assert await capability(shared, app_id="a").try_lock("lock", "res", "o", 10)
    assert await capability(shared, app_id="b").try_lock("lock", "res", "o", 10)
    plain = await make_store(keyPrefix="none")
    assert await capability(plain, app_id="a").try_lock("lock", "res", "o", 10)
    assert not await capability(plain, app_id="b").try_lock("lock", "res", "o", 10)


# ---- behaviour -------------------------------------------------------------------------------


async def test_try_lock_is_non_blocking_and_non_reentrant(locks: LockCapability) -> None:
    assert await locks.try_lock("lock", "res", "owner1", 10) is True
    assert await locks.try_lock("lock", "res", "owner2", 10) is False
    assert await locks.try_lock("lock", "res", "owner1", 10) is False
    assert await locks.try_lock("lock", "other", "owner2", 10) is True


async def test_unlock_statuses(locks: LockCapability) -> None:
    assert await locks.unlock("lock", "res", "owner1") is LockStatus.LOCK_UNEXIST
    assert await locks.try_lock("lock", "res", "owner1", 10)
    assert await locks.unlock("lock", "res", "owner2") is LockStatus.LOCK_BELONG_TO_OTHERS
    assert await locks.unlock("lock", "res", "owner1") is LockStatus.SUCCESS
    assert await locks.unlock("lock", "res", "owner1") is LockStatus.LOCK_UNEXIST
    assert await locks.try_lock("lock", "res", "owner2", 10)


async def test_fifty_concurrent_contenders_one_winner(locks: LockCapability) -> None:
    results = await asyncio.gather(
        *(locks.try_lock("lock", "hot", f"owner{i}", 10) for i in range(50))
    )
    assert results.count(True) == 1
    winner = f"owner{results.index(True)}"
    assert await locks.unlock("lock", "hot", winner) is LockStatus.SUCCESS


async def test_expired_lock_is_free(locks: LockCapability) -> None:
    assert await locks.try_lock("lock", "res", "owner1", 1)
    assert not await locks.try_lock("lock", "res", "owner2", 1)
    await asyncio.sleep(1.1)
    assert await locks.unlock("lock", "res", "owner1") is LockStatus.LOCK_UNEXIST
    assert await locks.try_lock("lock", "res", "owner2", 5)
    assert await locks.unlock("lock", "res", "owner1") is LockStatus.LOCK_BELONG_TO_OTHERS


async def test_keep_alive_extends_beyond_original_expiry(locks: LockCapability) -> None:
    assert await locks.try_lock("lock", "res", "owner1", 1)
    await asyncio.sleep(0.6)
    assert await locks.keep_alive("lock", "res", "owner1", 2) is LockStatus.SUCCESS
    await asyncio.sleep(0.8)  # 1.4 s after taking it: the original lease is over
    assert not await locks.try_lock("lock", "res", "owner2", 1)
    assert await locks.unlock("lock", "res", "owner1") is LockStatus.SUCCESS


async def test_keep_alive_statuses(locks: LockCapability) -> None:
    assert await locks.keep_alive("lock", "res", "owner1", 5) is LockStatus.LOCK_UNEXIST
    assert await locks.try_lock("lock", "res", "owner1", 1)
    assert await locks.keep_alive("lock", "res", "owner2", 5) is LockStatus.LOCK_BELONG_TO_OTHERS
    await asyncio.sleep(1.1)
    # an expired lease is not revived
    assert await locks.keep_alive("lock", "res", "owner1", 5) is LockStatus.LOCK_UNEXIST
    assert await locks.try_lock("lock", "res", "owner2", 5)


async def test_component_errors_keep_their_class() -> None:
    settings = decode(LockSettings, {}, component="lock.lock")
    broken = BrokenStore("lock", settings, ComponentContext("a", Path("/x")))
    with pytest.raises(Unavailable, match="failed to lock res in lock store lock: backend down"):
        await capability(broken).try_lock("lock", "res", "o", 5)


async def test_custom_prefix_with_separator_is_refused_at_decode() -> None:
    with pytest.raises(ConfigError, match="keyPrefix"):
        decode(LockSettings, {"keyPrefix": "a||b"}, component="lock.x")


def test_memory_store_is_a_lock_store() -> None:
    assert issubclass(MemoryLockStore, LockStore)
