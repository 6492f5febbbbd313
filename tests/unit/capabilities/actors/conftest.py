"""Fixtures: a real actor runtime (ActorsCapability on SingleMember) over an in-memory actor
state store, with an in-process app (host.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.actors import ActorsCapability, ActorState
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.state import StateCapability
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import StateStore
from pylotto.config.model import ActorsConfig, AppConfig
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve

APP = "app"
STORE = "actorstore"


async def memory_store(tmp_path: Path) -> StateStore:
    cls = resolve("state", "in-memory")
    store = cls(STORE, decode(cls.Settings, {}, component=f"state.{STORE}"),
                ComponentContext(app_id=APP, data_dir=tmp_path))
    assert isinstance(store, StateStore)
    await store.init()
    return store


def state_over(store: StateStore) -> StateCapability:
    return StateCapability(ComponentSet("state store", {store.name: store}),
                           RuntimeContext(AppConfig(id=APP), Path("/nonexistent")))


MakeRuntime = Callable[..., Awaitable[ActorsCapability]]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    component = await memory_store(tmp_path)
    yield component
    await component.close()


@pytest.fixture
async def runtime(store: StateStore) -> AsyncIterator[MakeRuntime]:
    """``await runtime(fencing=True, with_store=True, **kwargs)`` → a started runtime over
    the shared in-memory store (stopped at the end)."""
    made: list[ActorsCapability] = []

    async def make(*, fencing: bool = True, with_store: bool = True,
                   **kwargs: Any) -> ActorsCapability:
        kwargs.setdefault("retries", 5)
        kwargs.setdefault("retry_interval", 0.05)
        actor_state = ActorState(state_over(store), STORE, APP) if with_store else None
        cap = ActorsCapability(actor_state, ActorsConfig(fencing=fencing), APP, **kwargs)
        await cap.start()
        made.append(cap)
        return cap

    yield make
    for cap in made:
        await cap.stop()
