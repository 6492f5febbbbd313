"""Build Redis components for a test and remove every key the test made afterwards.

Each test gets a random ``prefix``; the keys it hands the components (``key("name")``), the app
ids of configuration items and so every Redis key the components write carry it, so the keys
of one test are found with ``SCAN MATCH *prefix*`` and deleted when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from pylotto.components.base import Component, ComponentContext
from pylotto.components.configuration.base import ConfigurationItem
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.servers import CONNECTION, require

HOST = CONNECTION["redis"]

Builder = Callable[..., AbstractAsyncContextManager[Any]]
WAIT = 5.0
"""Seconds a test waits for a change notification."""
KeyMaker = Callable[[str], str]


async def delete_keys(prefix: str, db: int = 0) -> None:
    """``SCAN`` for every key carrying ``prefix`` and ``DEL`` them."""
    client = Redis(host="127.0.0.1", port=6379, db=db)
    try:
        keys = [key async for key in client.scan_iter(match=f"*{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start:start + 500])
    finally:
        await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"rdu{uuid.uuid4().hex[:8]}"


@pytest.fixture
def key(prefix: str) -> KeyMaker:
    """``key("name")``: a Redis key of this test's own."""
    return lambda name: f"{prefix}||{name}"


@pytest.fixture
async def raw(prefix: str) -> AsyncIterator[Redis]:
    """A plain redis-py client, to look at what the components stored."""
    require("redis")
    client = Redis(host="127.0.0.1", port=6379)
    yield client
    await client.aclose()
    await delete_keys(prefix)


@pytest.fixture
async def build(prefix: str, tmp_path: Path) -> AsyncIterator[Builder]:
    """``async with build("state", {...metadata}) as component`` (redisHost given)."""
    require("redis")

    @asynccontextmanager
    async def make(capability: str, metadata: dict[str, Any] | None = None,
                   name: str = "rd") -> AsyncIterator[Any]:
        cls = resolve(capability, "redis")
        meta = {"redisHost": HOST, "timeout": "3s", **(metadata or {})}
        settings = decode(cls.Settings, meta, component=f"{capability}.{name}")
        component: Component = cls(name, settings, ComponentContext(
            app_id="app", data_dir=tmp_path, logger=logging.getLogger(f"test.{name}")))
        await component.init()
        try:
            yield component
        finally:
            await component.close()

    yield make
    await delete_keys(prefix)
    await delete_keys(prefix, db=1)


class Recorder:
    """A subscription handler that queues what it is called with."""

    def __init__(self, wait: float = WAIT) -> None:
        self.wait = wait
        self.calls: asyncio.Queue[list[ConfigurationItem]] = asyncio.Queue()

    def __call__(self, items: Sequence[ConfigurationItem]) -> None:
        self.calls.put_nowait(list(items))

    async def next(self) -> list[tuple[str, str]]:
        return [(i.key, i.content) for i in await asyncio.wait_for(self.calls.get(), self.wait)]

    async def changes(self, count: int) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []
        while len(seen) < count:
            seen += await self.next()
        return seen

    async def quiet(self) -> bool:
        """Nothing more arrives within a short while."""
        await asyncio.sleep(0.3)
        return self.calls.empty()
