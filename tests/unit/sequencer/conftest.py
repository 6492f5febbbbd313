"""Fixtures: sequencers built through the registry, as the runtime builds them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.sequencer import SequencerCapability
from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Sequencer
from pylotto.config.model import AppConfig
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve

MakeStore = Callable[..., Awaitable[Sequencer]]
"""``await make_store(name="seq", type_name=<param>, **metadata)`` → an initialised sequencer."""

STORE_TYPES = ["in-memory", "sqlite"]


async def started(*stores: Sequencer, app_id: str = "app") -> SequencerCapability:
    """A started capability (``biggerThan`` applied) over ``stores``."""
    service = SequencerCapability(
        ComponentSet("sequencer store", {s.name: s for s in stores}),
        RuntimeContext(AppConfig(app_id=app_id), Path("/nonexistent")),
    )
    await service.start()
    return service


@pytest.fixture(params=STORE_TYPES)
def store_type(request: pytest.FixtureRequest) -> str:
    type_name: str = request.param
    return type_name


@pytest.fixture
async def make_store(tmp_path: Path, store_type: str) -> AsyncIterator[MakeStore]:
    opened: list[Sequencer] = []

    async def make(name: str = "seq", type_name: str = store_type,
                   **metadata: Any) -> Sequencer:
        cls = resolve("sequencer", type_name)
        settings = decode(cls.Settings, metadata, component=f"sequencer.{name}")
        store = cls(name, settings, ComponentContext(app_id="app", data_dir=tmp_path / "data"))
        assert isinstance(store, Sequencer)
        await store.init()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
