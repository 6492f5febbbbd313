"""Fixtures: every state test runs against each embedded store (in-memory and sqlite)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.state import StateCapability
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import StateStore
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.unit.state.support import MakeStore, capability

STORE_TYPES = ["in-memory", "sqlite"]


@pytest.fixture(params=STORE_TYPES)
def store_type(request: pytest.FixtureRequest) -> str:
    type_name: str = request.param
    return type_name


@pytest.fixture
async def make_store(tmp_path: Path, store_type: str) -> AsyncIterator[MakeStore]:
    opened: list[StateStore] = []

    async def make(name: str = "store", app_id: str = "app", **metadata: Any) -> StateStore:
        cls = resolve("state", store_type)
        settings = decode(cls.Settings, metadata, component=f"state.{name}")
        store = cls(name, settings, ComponentContext(app_id=app_id, data_dir=tmp_path / "data"))
        assert isinstance(store, StateStore)
        await store.init()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> StateStore:
    return await make_store()


@pytest.fixture
def state(store: StateStore) -> StateCapability:
    return capability(store)
