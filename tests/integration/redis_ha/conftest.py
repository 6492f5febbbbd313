"""A real 3-master Redis Cluster and a real Sentinel set (master, two replicas, three
sentinels), started once per test process from Debian's redis-server
(:mod:`tests.support.redis_ha`), and a builder of components on either."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pylotto.components.base import Component, ComponentContext
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.redis_ha import (
    MASTER_NAME,
    Cluster,
    SentinelSet,
    start_cluster,
    start_sentinel_set,
)

Build = Callable[..., AbstractAsyncContextManager[Any]]


async def eventually(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within:g} s: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    started = start_cluster()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def sentinel_set() -> Iterator[SentinelSet]:
    started = start_sentinel_set()
    yield started
    started.stop()


def topology_metadata(topology: str, cluster: Cluster | None,
                      sentinels: SentinelSet | None) -> dict[str, str]:
    if topology == "cluster":
        assert cluster is not None
        return {"redisHost": cluster.redis_host, "redisType": "cluster"}
    assert sentinels is not None
    return {"redisHost": sentinels.redis_host, "failover": "true",
            "sentinelMasterName": MASTER_NAME}


@pytest.fixture(params=["cluster", "sentinel"])
def topology(request: pytest.FixtureRequest) -> dict[str, str]:
    """The connection metadata of the cluster or of the Sentinel set (each test runs on both)."""
    if request.param == "cluster":
        return topology_metadata("cluster", request.getfixturevalue("cluster"), None)
    return topology_metadata("sentinel", None, request.getfixturevalue("sentinel_set"))


@pytest.fixture
def key() -> Callable[[str], str]:
    prefix = f"ha{uuid.uuid4().hex[:8]}"
    return lambda name: f"{prefix}||{name}"


@pytest.fixture
async def build(tmp_path: Path) -> AsyncIterator[Build]:
    """``async with build("state", metadata) as component``."""

    @asynccontextmanager
    async def make(capability: str, metadata: dict[str, str],
                   name: str = "ha") -> AsyncIterator[Any]:
        cls = resolve(capability, "redis")
        settings = decode(cls.Settings, {"timeout": "3s", **metadata},
                          component=f"{capability}.{name}")
        component: Component = cls(name, settings, ComponentContext(
            app_id="app", data_dir=tmp_path, logger=logging.getLogger(f"test.{name}")))
        await component.init()
        try:
            yield component
        finally:
            await component.close()

    yield make
