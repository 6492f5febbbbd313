"""``redis``: leases in Redis, shared by every sidecar using the same server and db.

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``timeout`` (see :mod:`pylotto.components._backends.redis_client`), plus ``keyPrefix``. Calls are
pipelined over one connection (:mod:`pylotto.components._backends.redis_pipelined`); Sentinel
and Cluster (``failover``, ``redisType``) and ``waitReplicas``:
:mod:`pylotto.components._backends.redis_topology` (one key per lease: any slot).

A lease is one string key holding the owner, with Redis' expiry: ``try_lock`` is
``SET key owner NX EX seconds`` (exactly one of any number of contenders gets it);
``unlock`` and ``keep_alive`` are Lua scripts that compare the owner and act in one step, so a
lease that expired and was taken by someone else is never released or renewed by its old owner.
"""

from __future__ import annotations

from pylotto.components._backends.redis_client import RedisSettings
from pylotto.components._backends.redis_topology import RequestClient, request_client
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.lock.base import LockSettings, LockStatus, LockStore

# 0 = SUCCESS, 1 = LOCK_UNEXIST, 2 = LOCK_BELONG_TO_OTHERS (the LockStatus numbers)
_UNLOCK = """
local owner = redis.call("GET", KEYS[1])
if not owner then return 1 end
if owner ~= ARGV[1] then return 2 end
redis.call("DEL", KEYS[1])
return 0
"""

_KEEP_ALIVE = """
local owner = redis.call("GET", KEYS[1])
if not owner then return 1 end
if owner ~= ARGV[1] then return 2 end
redis.call("EXPIRE", KEYS[1], ARGV[2])
return 0
"""


class RedisLockSettings(LockSettings, RedisSettings):
    pass


class RedisLockStore(ClientComponent[RequestClient], LockStore):
    Settings = RedisLockSettings
    settings: RedisLockSettings

    def __init__(self, name: str, settings: RedisLockSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = request_client(settings, f"lock store {name}")
        self._unlock = self.client.script(_UNLOCK, write=True)
        self._keep_alive = self.client.script(_KEEP_ALIVE, write=True)

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        taken = await self.client.execute("SET", resource_id, owner, "NX", "EX", expire_seconds,
                                          write=True)
        return taken is not None

    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        return LockStatus(int(await self._unlock(keys=[resource_id], args=[owner])))

    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        status = await self._keep_alive(keys=[resource_id], args=[owner, expire_seconds])
        return LockStatus(int(status))
