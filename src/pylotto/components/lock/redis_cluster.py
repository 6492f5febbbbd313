"""``redis_cluster``: Layotto's redlock, leases on several independent Redis servers.

Metadata (Layotto's names): ``redisHosts`` (``host:port,host:port,...``, required: the servers,
each on its own; at least 3, 5 is better), ``redisPassword``, ``redisUsername``, ``db`` (or
``redisDB``), ``enableTLS``, ``timeout`` (every call, default 10s), plus ``keyPrefix``.
``concurrency``, ``maxRetries`` and ``maxRetryBackoff`` are accepted with no effect (calls to
the servers are concurrent anyway; a failed call is not retried within a try).

``try_lock`` sends ``SET key owner NX EX seconds`` to every server at once; the lease is taken
when a majority answered OK, and only if that took less than a tenth of the expiry (Layotto's
rule: the lease must still be worth holding); otherwise the servers it got are released again.
``unlock`` and ``keep_alive`` run the owner-comparing scripts of ``lock.redis`` on every
server: SUCCESS when a majority acted, LOCK_BELONG_TO_OTHERS when a majority holds another
owner's lease, LOCK_UNEXIST otherwise. When servers fail and the answer depends on them, the
call is UNAVAILABLE. Departures from Layotto (which answers SUCCESS to every unlock that meets
no error and does not implement keep-alive): the statuses are those of every other lock store,
and a try that got its majority despite a server error succeeds without an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import Field, field_validator

from pylotto.components._backends.redis_client import RedisSettings, host_port
from pylotto.components._backends.redis_pipelined import PipelinedRedisClient
from pylotto.components.base import ComponentContext
from pylotto.components.lock.base import LockSettings, LockStatus, LockStore
from pylotto.components.lock.redis import _KEEP_ALIVE, _UNLOCK
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import Duration


class RedisClusterLockSettings(LockSettings):
    redis_hosts: str = Field(alias="redisHosts", min_length=1)
    redis_username: str = Field("", alias="redisUsername")
    redis_password: str = Field("", alias="redisPassword")
    redis_db: int = Field(0, alias="db", validation_alias="redisDB", ge=0)
    enable_tls: bool = Field(False, alias="enableTLS")
    timeout: Duration = Field(10.0, alias="timeout", gt=0)
    concurrency: int = Field(0, alias="concurrency")
    max_retries: int = Field(0, alias="maxRetries")
    max_retry_backoff: int = Field(0, alias="maxRetryBackoff")

    @field_validator("redis_hosts")
    @classmethod
    def _hosts(cls, value: str) -> str:
        hosts = [host.strip() for host in value.split(",") if host.strip()]
        if not hosts:
            raise ValueError("expected host:port[,host:port...]")
        for host in hosts:
            host_port(host)
        if len(set(hosts)) != len(hosts):
            raise ValueError("a server is listed twice (each counts once in the majority)")
        return ",".join(hosts)

    @property
    def hosts(self) -> list[str]:
        return self.redis_hosts.split(",")

    def server(self, host: str) -> RedisSettings:
        return RedisSettings.model_validate({
            "redisHost": host, "redisUsername": self.redis_username,
            "redisPassword": self.redis_password, "redisDB": self.redis_db,
            "enableTLS": self.enable_tls, "timeout": self.timeout})


class RedisClusterLockStore(LockStore):
    Settings = RedisClusterLockSettings
    settings: RedisClusterLockSettings

    def __init__(self, name: str, settings: RedisClusterLockSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.clients = [PipelinedRedisClient(settings.server(host), f"lock store {name} ({host})")
                        for host in settings.hosts]
        self._unlock = [client.script(_UNLOCK) for client in self.clients]
        self._keep_alive = [client.script(_KEEP_ALIVE) for client in self.clients]

    async def init(self) -> None:
        try:
            await asyncio.gather(*(client.open() for client in self.clients))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for client in self.clients:
            await client.close()

    async def ping(self) -> None:
        """Unavailable when a majority cannot be reached (no lease could be taken)."""
        answers = await self._everywhere([c.ping() for c in self.clients])
        if self._majority(sum(1 for a in answers if not isinstance(a, BaseException))):
            return
        raise self._unavailable(answers, "ping")

    def _majority(self, count: int) -> bool:
        return count * 2 > len(self.clients)

    async def _everywhere(self, calls: Sequence[Awaitable[Any]]) -> list[Any]:
        return list(await asyncio.gather(*calls, return_exceptions=True))

    def _unavailable(self, answers: list[Any], what: str) -> Unavailable:
        errors = "; ".join(str(a) for a in answers if isinstance(a, BaseException))
        return Unavailable(f"lock store {self.name}: {what} has no majority of "
                           f"{len(self.clients)} servers: {errors}")

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        began = time.monotonic()
        answers = await self._everywhere([
            client.execute("SET", resource_id, owner, "NX", "EX", expire_seconds)
            for client in self.clients])
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, Exception):
                raise answer  # a cancellation
        taken = sum(1 for a in answers if a is not None and not isinstance(a, BaseException))
        failed = sum(1 for a in answers if isinstance(a, BaseException))
        in_time = time.monotonic() - began < expire_seconds / 10
        if self._majority(taken) and in_time:
            return True
        if taken:
            await self._everywhere([unlock(keys=[resource_id], args=[owner])
                                    for unlock in self._unlock])
        if not in_time:
            raise Unavailable(f"lock store {self.name}: taking {resource_id!r} took longer "
                              f"than a tenth of its {expire_seconds}s expiry; released")
        if failed and self._majority(taken + failed):
            raise self._unavailable(answers, "try_lock")
        return False

    async def _statuses(self, scripts: list[Callable[..., Awaitable[Any]]],
                        args: list[Any], what: str) -> LockStatus:
        answers = await self._everywhere([script(keys=[args[0]], args=args[1:])
                                          for script in scripts])
        counts = {status: sum(1 for a in answers if not isinstance(a, BaseException)
                              and int(a) == status) for status in LockStatus}
        failed = sum(1 for a in answers if isinstance(a, BaseException))
        for status in (LockStatus.SUCCESS, LockStatus.LOCK_BELONG_TO_OTHERS):
            if self._majority(counts[status]):
                return status
        if failed and (self._majority(counts[LockStatus.SUCCESS] + failed)
                       or self._majority(counts[LockStatus.LOCK_BELONG_TO_OTHERS] + failed)):
            raise self._unavailable(answers, what)
        return LockStatus.LOCK_UNEXIST

    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        return await self._statuses(self._unlock, [resource_id, owner], "unlock")

    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        return await self._statuses(self._keep_alive, [resource_id, owner, expire_seconds],
                                    "keep_alive")
