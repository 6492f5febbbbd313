"""lock.redis_cluster over three servers of its own: a majority decides, a lost one is
tolerated, two lost are UNAVAILABLE."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.lock.base import LockStatus
from pylotto.components.lock.redis_cluster import RedisClusterLockSettings, RedisClusterLockStore
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import decode
from tests.support.ports import free_port
from tests.support.redis_servers import start_redis


async def test_a_majority_decides(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    servers = [start_redis(port) for port in ports]
    try:
        settings = decode(RedisClusterLockSettings, {
            "redisHosts": ",".join(f"127.0.0.1:{p}" for p in ports), "timeout": "1s"},
            component="lock.rl")
        store = RedisClusterLockStore("rl", settings, ComponentContext(
            app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.rl")))
        await store.init()
        assert await store.try_lock("r", "a", 30)
        assert not await store.try_lock("r", "b", 30)
        assert await store.unlock("r", "b") is LockStatus.LOCK_BELONG_TO_OTHERS
        servers[0].kill()
        servers[0].wait()
        assert await store.keep_alive("r", "a", 30) is LockStatus.SUCCESS
        assert await store.unlock("r", "a") is LockStatus.SUCCESS
        assert await store.try_lock("r", "b", 30)  # two of three are enough
        assert await store.unlock("r", "b") is LockStatus.SUCCESS
        assert await store.unlock("r", "b") is LockStatus.LOCK_UNEXIST
        servers[1].kill()
        servers[1].wait()
        with pytest.raises(Unavailable):
            await store.try_lock("r", "c", 30)
        with pytest.raises(Unavailable):
            await store.ping()
        await store.close()
    finally:
        for server in servers:
            server.kill()
            server.wait()


def test_layottos_keys() -> None:
    settings = decode(RedisClusterLockSettings, {
        "redisHosts": "a:1, b:2,c:3", "db": "2", "concurrency": "8", "maxRetries": "3",
        "maxRetryBackoff": "100", "redisPassword": "pw"}, component="lock.rl")
    assert settings.hosts == ["a:1", "b:2", "c:3"] and settings.redis_db == 2
    assert settings.server("b:2").redis_password == "pw"
