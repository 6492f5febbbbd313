"""``redis``: a state store in Redis, shared by every sidecar using the same server and db.

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``timeout`` (see :mod:`pylotto.components._backends.redis_client`), plus ``keyPrefix`` and
``ttlInSeconds`` of every store. Calls are pipelined over one connection
(:mod:`pylotto.components._backends.redis_pipelined`), so ``poolSize`` has no use here, except
in cluster mode. Sentinel (``failover``), Cluster (``redisType: cluster``) and ``waitReplicas``:
:mod:`pylotto.components._backends.redis_topology`.

Cluster mode: a bulk read is one script per hash slot of its keys (run concurrently). A batch —
bulk save or delete, a transaction — whose keys share one slot (one ``{hash tag}`` in every key
does it) is one script, all-or-nothing as on one server. A batch across slots is, as Dapr's
store there (go-redis runs one MULTI/EXEC per slot), atomic per slot only: every slot's part is
checked first, then the parts are applied in turn, each checking again; a refusal then leaves
the parts before it applied and says so in the error.

Layout and etag rules, as components-contrib's Redis store (``state/redis/redis.go``: the
same at v1.5.2, which Layotto pins, and v1.18): one hash per key with fields ``data`` (the
value's bytes, returned unchanged), ``version`` (the etag: ``HINCRBY``, so each key counts from
1) and, once the key was saved with first-write, ``first-write``. Etags are decimal; a save's
etag is parsed (not a number: EtagInvalid), a delete's is compared as text.

- A save is applied when the key is missing (whatever the etag), when the etag equals the
  version, or when there is no etag — none, ``""``, ``"0"`` (what Layotto's SDKs send when the
  caller gives none) or any etag under last-write — and the key was never saved with
  first-write. Otherwise EtagMismatch.
- A delete is applied when the key is missing, the etag is none or ``"0"``, or it equals the
  version; concurrency plays no part.
- First-write marks the key (``first-write``), after which a save without etag fails. Outside
  transactions only, as the reference (its Multi passes no first-write argument).

Departures, each because the reference loses data: first-write without etag on an existing key
is refused even when the key is not marked (the reference overwrites it); a key of another
Redis type is an error (the reference deletes it and writes the hash); a batch — bulk save or
delete, a transaction — is all-or-nothing (the reference's Multi is a MULTI/EXEC pipeline, where
a failed check leaves the other writes applied). As in the reference, a key deleted and written
again counts from 1, so an etag read before the delete can match the new item.

Hashes written before versions were per key (from one counter key, ``pylotto|||state-etag|||``)
are read and written as they are: ``HINCRBY`` continues from their version; the counter key is
no longer used and can be deleted.

Every write — one item, a bulk save or delete, a transaction — is one Lua script: it checks
every operation first, then applies every operation, or none. Operations of one batch see the
earlier ones (a key saved earlier in the batch exists, with its next version). TTL is Redis'
own expiry of the hash (PEXPIRE), so an expired item is gone at once; reads report
``ttlExpireTime`` from PTTL. Reads are one round trip, bulk reads included.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from pylotto.components._backends.redis_client import RedisSettings
from pylotto.components._backends.redis_topology import (
    RequestClient,
    group_by_slot,
    request_client,
)
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.state.base import (
    BatchStateStore,
    BulkGetItem,
    Concurrency,
    Consistency,
    Feature,
    GetResult,
    KeyListingStateStore,
    SetRequest,
    StateSettings,
    TransactionOp,
    expiry_metadata,
    parse_int_etag,
)
from pylotto.core.errors import EtagMismatch, Internal
from pylotto.core.types import Metadata

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

NO_ETAG = "0"
"""The etag argument meaning "none": what components-contrib passes, and Layotto's SDK sends."""

_ARGS = 6
"""ARGV entries per operation."""
# ARGV per operation: kind ("s" save, "d" delete), etag (NO_ETAG: none), first ("1":
# first-write), mark ("1": set the first-write field), value, ttl in ms (0: persist).
_CHECKS = """
local view = {}
local function current(key)
  local s = view[key]
  if s == nil then
    local r = redis.call("HMGET", key, "version", "first-write")
    s = {tonumber(r[1]) or 0, r[2] ~= false}
    view[key] = s
  end
  return s
end
for i = 1, #KEYS do
  local key, base = KEYS[i], (i - 1) * 6
  local kind, etag = ARGV[base + 1], ARGV[base + 2]
  local s = current(key)
  local version, marked = s[1], s[2]
  if kind == "s" then
    if version ~= 0 then
      if etag ~= "0" then
        if tostring(version) ~= etag then return {i, "mismatch"} end
      elseif ARGV[base + 3] == "1" then return {i, "exists"}
      elseif marked then return {i, "marked"} end
    end
    view[key] = {version + 1, marked or ARGV[base + 4] == "1"}
  else
    if version ~= 0 and etag ~= "0" and tostring(version) ~= etag then
      return {i, "mismatch"}
    end
    view[key] = {0, false}
  end
end
"""

_APPLY = _CHECKS + """
for i = 1, #KEYS do
  local key, base = KEYS[i], (i - 1) * 6
  if ARGV[base + 1] == "s" then
    if ARGV[base + 4] == "1" then
      redis.call("HSET", key, "data", ARGV[base + 5], "first-write", 0)
    else
      redis.call("HSET", key, "data", ARGV[base + 5])
    end
    redis.call("HINCRBY", key, "version", 1)
    local ttl = tonumber(ARGV[base + 6])
    if ttl > 0 then redis.call("PEXPIRE", key, ttl) else redis.call("PERSIST", key) end
  else
    redis.call("DEL", key)
  end
end
return {0, ""}
"""

_CHECK_ONLY = _CHECKS + """
return {0, ""}
"""
"""The checks of ``_APPLY`` alone: a cluster transaction across slots checks every slot
before it writes any."""


class RedisStateSettings(StateSettings, RedisSettings):
    pass


class RedisStateStore(ClientComponent[RequestClient], BatchStateStore,
                      KeyListingStateStore):
    Settings = RedisStateSettings
    settings: RedisStateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL})

    def __init__(self, name: str, settings: RedisStateSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = request_client(settings, f"state store {name}")
        self._get = self.client.script(_GET)
        self._apply = self.client.script(_APPLY, write=True)
        self._check = self.client.script(_CHECK_ONLY)

    # ---- reads -----------------------------------------------------------------------------

    async def _read(self, keys: Sequence[str]) -> list[Row]:
        groups = group_by_slot(self.client, keys)  # one in all but cluster mode
        replies = await asyncio.gather(*(self._get(keys=[keys[i] for i in group], args=[])
                                         for group in groups))
        rows: list[Any] = [None] * len(keys)
        for group, reply in zip(groups, replies, strict=True):
            for index, row in zip(group, reply, strict=True):
                rows[index] = row
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

    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"
        keys: list[str] = []
        async for key in self.client.scan(pattern, 1000):
            keys.append(_text(key))
            if len(keys) >= limit:
                break
        return keys[:limit]

    # ---- writes ----------------------------------------------------------------------------

    def _ttl_ms(self, request: SetRequest) -> int:
        ttl = self.settings.ttl_in_seconds if request.ttl_seconds is None else request.ttl_seconds
        return ttl * 1000 if ttl is not None and ttl > 0 else 0

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        """One Lua script: every check first, then every write, or nothing."""
        await self._run(operations, mark=True)

    async def multi(self, operations: Sequence[TransactionOp], metadata: Metadata) -> None:
        await self._run(operations, mark=False)  # the reference's Multi never marks first-write

    async def _run(self, operations: Sequence[TransactionOp], mark: bool) -> None:
        if not operations:
            return
        args: list[Any] = []
        for op in operations:
            if isinstance(op, SetRequest):
                first = op.concurrency is Concurrency.FIRST_WRITE
                args += ["s", self._save_etag(op), "1" if first else "0",
                         "1" if first and mark else "0", op.value, self._ttl_ms(op)]
            else:
                args += ["d", NO_ETAG if op.etag is None else op.etag, "0", "0", b"", 0]
        keys = [op.key for op in operations]
        groups = group_by_slot(self.client, keys)
        if len(groups) == 1:
            failed, reason = await self._apply(keys=keys, args=args)
            if int(failed):
                raise _refusal(self.name, operations[int(failed) - 1], _text(reason))
            return
        await self._across_slots(operations, keys, args, groups)

    async def _across_slots(self, operations: Sequence[TransactionOp], keys: list[str],
                            args: list[Any], groups: list[list[int]]) -> None:
        """Cluster mode, keys of several slots: as Dapr's store there (go-redis runs one
        MULTI/EXEC per slot), each slot's part is atomic, the whole is not. Every part is
        checked first, then each is applied (checking again) in turn; a part refused then
        leaves the parts before it applied, and the error says so."""

        def part(group: list[int]) -> tuple[list[str], list[Any]]:
            return ([keys[i] for i in group],
                    [a for i in group for a in args[i * _ARGS:(i + 1) * _ARGS]])

        for script, applying in ((self._check, False), (self._apply, True)):
            for done, group in enumerate(groups):
                part_keys, part_args = part(group)
                failed, reason = await script(keys=part_keys, args=part_args)
                if int(failed):
                    error = _refusal(self.name, operations[group[int(failed) - 1]],
                                     _text(reason))
                    if applying and done:
                        applied = sum(len(g) for g in groups[:done])
                        error = type(error)(
                            f"{error.message} (cluster mode: the operations on {applied} "
                            "keys of other hash slots were applied already: a transaction "
                            "is atomic only within one slot; give its keys one {hash tag})")
                    raise error

    def _save_etag(self, op: SetRequest) -> str:
        """The version a save expects, or NO_ETAG (components-contrib's ``parseETag``)."""
        if op.etag is None or op.concurrency is Concurrency.LAST_WRITE:
            return NO_ETAG
        return str(parse_int_etag(op.etag, self.name))


def _refusal(store: str, op: TransactionOp, reason: str) -> EtagMismatch | Internal:
    if reason == "exists":
        return EtagMismatch(
            f"state store {store}: first-write: key {op.key!r} exists and no etag was given")
    if reason == "marked":
        return EtagMismatch(
            f"state store {store}: key {op.key!r} was saved with first-write: "
            "a save without etag is refused")
    if reason == "mismatch":
        return EtagMismatch(f"state store {store}: etag mismatch for key {op.key!r}: "
                            f"{op.etag!r} is not the current version")
    return Internal(f"state store {store}: unexpected answer {reason!r} for key {op.key!r}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
