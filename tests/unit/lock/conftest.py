"""Fixtures: lock stores built through the registry, as the runtime builds them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.lock import LockCapability
from pylotto.components.base import ComponentContext
from pylotto.components.lock.base import LockStore
from pylotto.config.model import AppConfig
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve

MakeStore = Callable[..., Awaitable[LockStore]]


def capability(*stores: LockStore, app_id: str = "app") -> LockCapability:
    return LockCapability(
        ComponentSet("lock store", {s.name: s for s in stores}),
        RuntimeContext(AppConfig(app_id=app_id), Path("/nonexistent")),
    )


@pytest.fixture
async def make_store(tmp_path: Path) -> AsyncIterator[MakeStore]:
    opened: list[LockStore] = []

    async def make(name: str = "lock", type_name: str = "in-memory", **metadata: Any) -> LockStore:
        cls = resolve("lock", type_name)
        settings = decode(cls.Settings, metadata, component=f"lock.{name}")
        store = cls(name, settings, ComponentContext(app_id="app", data_dir=tmp_path))
        assert isinstance(store, LockStore)
        await store.init()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> LockStore:
    return await make_store()


@pytest.fixture
def locks(store: LockStore) -> LockCapability:
    return capability(store)
