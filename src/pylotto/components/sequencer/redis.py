"""``redis``: counters in Redis, shared by every sidecar using the same server and db.

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``timeout`` (see :mod:`pylotto.components._backends.redis_client`; calls are pipelined over one
connection, :mod:`pylotto.components._backends.redis_pipelined`; Sentinel, Cluster and
``waitReplicas``: :mod:`pylotto.components._backends.redis_topology`), ``segmentSize`` (ids
reserved per WEAK refill, default 1000), plus ``keyPrefix`` and ``biggerThan``.

Each key is one integer: ``INCR`` hands out one id, ``INCRBY size`` reserves a segment, both
atomic across sidecars; ``biggerThan`` raises it with a Lua script (set to the floor when
below it, in one step, so a floor never moves a counter back). Ids survive a sidecar
restart; a Redis server that keeps nothing on disk loses them with its own restart (turn on
AOF or RDB persistence for counters that must outlive the server).
"""

from __future__ import annotations

from pylotto.components._backends.redis_client import RedisSettings
from pylotto.components._backends.redis_topology import RequestClient, request_client
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.core.types import Metadata

# Compares the decimal strings themselves: Lua numbers are doubles, exact only up to 2^53,
# while Redis counters are 64-bit. Both sides are canonical (INCR's and Python's str(int)).
_RAISE_TO = """
local function less(a, b)
  local neg_a, neg_b = a:sub(1, 1) == "-", b:sub(1, 1) == "-"
  if neg_a ~= neg_b then return neg_a end
  if #a ~= #b then
    if neg_a then return #a > #b else return #a < #b end
  end
  if neg_a then return a > b else return a < b end
end
local current = redis.call("GET", KEYS[1]) or "0"
if less(current, ARGV[1]) then redis.call("SET", KEYS[1], ARGV[1]) end
return 0
"""


class RedisSequencerSettings(SegmentSettings, RedisSettings):
    pass


class RedisSequencer(ClientComponent[RequestClient], SegmentSequencer):
    Settings = RedisSequencerSettings
    settings: RedisSequencerSettings
    features = frozenset({Feature.SEGMENT})

    def __init__(self, name: str, settings: RedisSequencerSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = request_client(settings, f"sequencer store {name}")
        self._raise_to = self.client.script(_RAISE_TO, write=True)

    async def next_id(self, key: str, metadata: Metadata) -> int:
        return int(await self.client.execute("INCR", key, write=True))

    async def get_segment(self, key: str, size: int) -> Segment:
        last = int(await self.client.execute("INCRBY", key, size, write=True))
        return Segment(last - size + 1, last)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        await self._raise_to(keys=[key], args=[str(floor)])
