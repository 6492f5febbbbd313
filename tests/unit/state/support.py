"""Helpers shared by the state unit tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.state import StateCapability
from pylotto.components.state.base import StateStore
from pylotto.config.model import AppConfig

MakeStore = Callable[..., Awaitable[StateStore]]
"""``await make_store(name="store", app_id="app", **metadata)`` → an initialised store."""


def capability(*stores: StateStore, app_id: str = "app") -> StateCapability:
    return StateCapability(
        ComponentSet("state store", {s.name: s for s in stores}),
        RuntimeContext(AppConfig(app_id=app_id), Path("/nonexistent")),
    )
