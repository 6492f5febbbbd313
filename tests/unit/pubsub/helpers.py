"""Shared helpers for the pub/sub unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from pylotto.components.base import ComponentContext
from pylotto.components.pubsub.memory import InMemoryPubSub, InMemoryPubSubSettings
from pylotto.core.metadata import decode

FAST_RETRY = {
    "backOffInitialInterval": "10ms",
    "backOffMultiplier": "2",
    "backOffRandomizationFactor": "0",
    "backOffMaxInterval": "50ms",
}


async def broker(tmp_path: Path, app_id: str = "app", **metadata: str) -> InMemoryPubSub:
    settings = decode(InMemoryPubSubSettings, metadata, component="pubsub.mem")
    component = InMemoryPubSub("mem", settings, ComponentContext(app_id=app_id, data_dir=tmp_path))
    await component.init()
    return component


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    """Wait until ``check()`` holds (polling: the conditions span several objects)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def settle(seconds: float = 0.05) -> None:
    await asyncio.sleep(seconds)

