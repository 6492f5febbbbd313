"""Fixtures: the in-memory configuration store behind a capability."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.configuration import ConfigurationCapability
from pylotto.components.base import ComponentContext
from pylotto.components.configuration.base import ConfigurationStore
from pylotto.config.model import AppConfig
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve


def capability(*stores: ConfigurationStore, app_id: str = "app") -> ConfigurationCapability:
    return ConfigurationCapability(
        ComponentSet("configuration store", {s.name: s for s in stores}),
        RuntimeContext(AppConfig(app_id=app_id), Path("/nonexistent")),
    )


async def make_store(name: str = "config") -> ConfigurationStore:
    cls = resolve("configuration", "in-memory")
    settings = decode(cls.Settings, {}, component=f"configuration.{name}")
    store = cls(name, settings, ComponentContext(app_id="app", data_dir=Path("/nonexistent")))
    assert isinstance(store, ConfigurationStore)
    await store.init()
    return store


@pytest.fixture
async def store() -> AsyncIterator[ConfigurationStore]:
    made = await make_store()
    yield made
    await made.close()


@pytest.fixture
async def config(store: ConfigurationStore) -> AsyncIterator[ConfigurationCapability]:
    service = capability(store)
    await service.start()
    yield service
    await service.stop()
