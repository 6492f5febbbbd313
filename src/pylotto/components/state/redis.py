"""``redis``: a state store in Redis, shared by every sidecar using the same server and db.

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``timeout`` (see :mod:`pylotto.components._backends.redis_client`), plus ``keyPrefix`` and
``ttlInSeconds`` of every store. Calls are pipelined over one connection
(:mod:`pylotto.components._backends.redis_pipelined`), so ``poolSize`` has no use here.

Layout, as Dapr's Redis store: one hash per key with fields ``data`` (the value's bytes,
returned unchanged) and ``version`` (the etag). Versions come from one counter,
``pylotto|||state-etag|||`` (a name no app key can take: keys may not contain ``||``), so an
etag is never reused, not even after a delete. TTL is Redis' own expiry of the hash (PEXPIRE),
so an expired item is gone at once; reads report ``ttlExpireTime`` from PTTL.

Every write — one item, a bulk save or delete, a transaction — is one Lua script: it checks
every etag and first-write rule first, then applies every operation, or none. Operations of one
batch see the earlier ones (a key set earlier in the batch exists for first-write). Reads are
one round trip, bulk reads included.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pylotto.components._backends.redis_client import RedisSettings
from pylotto.components._backends.redis_pipelined import PipelinedRedisClient
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.state.base import (
    BatchStateStore,
    BulkGetItem,
    Concurrency,
    Consistency,
    Feature,
    GetResult,
    SetRequest,
    StateSettings,
    TransactionOp,
    expiry_metadata,
    parse_int_etag,
)
from pylotto.core.errors import EtagMismatch, Internal
from pylotto.core.types import Metadata

ETAG_COUNTER = "pylotto|||state-etag|||"

Row = tuple[bytes, str, dict[str, str]] | None
"""A key's value, etag and metadata (``ttlExpireTime``), or None when it has none."""

_GET = """
local out = {}
for i, key in ipairs(KEYS) do
  local r = redis.call("HMGET", key, "data", "version")
  if r[2] then out[i] = {r[1], r[2], redis.call("PTTL", key)} else out[i] = {} end
end
return out
"""

_APPLY = """
local n = #KEYS - 1
local view = {}
for i = 1, n do
  local key, base = KEYS[i + 1], (i - 1) * 5
  local kind, etag, first = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local current = view[key]
  if current == nil then
    current = redis.call("HGET", key, "version")
    if not current then current = "" end
  end
  if etag ~= "" then
    if current == "" then return {i, "absent"} end
    if current ~= etag then return {i, "mismatch"} end
  elseif kind == "s" and first == "1" and current ~= "" then
    return {i, "exists"}
  end
  if kind == "s" then view[key] = "pending" else view[key] = "" end
end
for i = 1, n do
  local key, base = KEYS[i + 1], (i - 1) * 5
  if ARGV[base + 1] == "s" then
    local version = redis.call("INCR", KEYS[1])
    redis.call("HSET", key, "data", ARGV[base + 4], "version", version)
    local ttl = tonumber(ARGV[base + 5])
    if ttl > 0 then redis.call("PEXPIRE", key, ttl) else redis.call("PERSIST", key) end
  else
    redis.call("DEL", key)
  end
end
return {0, ""}
"""


class RedisStateSettings(StateSettings, RedisSettings):
    pass


class RedisStateStore(ClientComponent[PipelinedRedisClient], BatchStateStore):
    Settings = RedisStateSettings
    settings: RedisStateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL})

    def __init__(self, name: str, settings: RedisStateSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = PipelinedRedisClient(settings, f"state store {name}")
        self._get = self.client.script(_GET)
        self._apply = self.client.script(_APPLY)

    # ---- reads -----------------------------------------------------------------------------

    async def _read(self, keys: Sequence[str]) -> list[Row]:
        rows = await self._get(keys=list(keys), args=[])
        now = time.time()
        out: list[Row] = []
        for row in rows:
            if not row:
                out.append(None)
                continue
            data, version, pttl = row
            expiry = now + int(pttl) / 1000 if int(pttl) > 0 else None
            out.append((bytes(data or b""), _text(version), expiry_metadata(expiry)))
        return out

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        [row] = await self._read((key,))
        return None if row is None else GetResult(*row)

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        if not keys:
            return []
        rows = await self._read(keys)
        return [BulkGetItem(key) if row is None else BulkGetItem(key, row[0], row[1],
                                                                 metadata=row[2])
                for key, row in zip(keys, rows, strict=True)]

    # ---- writes ----------------------------------------------------------------------------

    def _ttl_ms(self, request: SetRequest) -> int:
        ttl = self.settings.ttl_in_seconds if request.ttl_seconds is None else request.ttl_seconds
        return ttl * 1000 if ttl is not None and ttl > 0 else 0

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        """One Lua script: every check first, then every write, or nothing."""
        if not operations:
            return
        args: list[Any] = []
        for op in operations:
            etag = "" if op.etag is None else str(parse_int_etag(op.etag, self.name))
            if isinstance(op, SetRequest):
                first = op.concurrency is Concurrency.FIRST_WRITE
                args += ["s", etag, "1" if first else "0", op.value, self._ttl_ms(op)]
            else:
                args += ["d", etag, "0", b"", 0]
        failed, reason = await self._apply(
            keys=[ETAG_COUNTER, *(op.key for op in operations)], args=args)
        if int(failed):
            op = operations[int(failed) - 1]
            raise _refusal(self.name, op, _text(reason))


def _refusal(store: str, op: TransactionOp, reason: str) -> EtagMismatch | Internal:
    if reason == "exists":
        return EtagMismatch(
            f"state store {store}: first-write: key {op.key!r} exists and no etag was given")
    if reason == "absent":
        return EtagMismatch(f"state store {store}: etag mismatch: key {op.key!r} does not exist")
    if reason == "mismatch":
        return EtagMismatch(f"state store {store}: etag mismatch for key {op.key!r}: "
                            f"{op.etag!r} is not the current version")
    return Internal(f"state store {store}: unexpected answer {reason!r} for key {op.key!r}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
