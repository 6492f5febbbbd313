"""``redis``: configuration items in Redis, with change notifications over Redis pub/sub.

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``poolSize`` / ``maxConns``, ``timeout`` (see :mod:`pylotto.components._backends.redis_client`).
Default group and label: ``default``.

Layout, per (app id, group, label) — written ``A`` below, the JSON array
``[app_id, group, label]``:

- ``pylotto-config:A``: a hash, one field per item key, holding ``{"content", "tags",
  "metadata"}`` as JSON;
- ``pylotto-config-seq:A``: the number of changes made so far to that hash (an integer);
- ``pylotto-config-changes:A``: the pub/sub channel of its changes. Each message is
  ``{"seq": n, "items": [[key, value], ...]}``: the change's number and the items it touched,
  ``value`` being the stored JSON, or ``""`` for a deleted item.

Every save or delete is one Lua script: it writes the hashes, counts each changed hash's
change and PUBLISHes it, all in one step, so writes and notifications are atomic and every
subscriber receives the changes in the order Redis applied them. A delete publishes only the
items that existed.

Subscriptions: one pub/sub connection per store, opened with the first subscription (it fails
then with Unavailable if the server is down), SUBSCRIBEd to the channels of the live
subscriptions — a subscriber receives only the changes of its own app, group and label.
``subscribe`` returns once Redis confirmed the channel, so every change made afterwards
reaches the handler. The connection is pinged when silent for ``timeout`` and counts as lost
when the answer does not come within another ``timeout``; after a loss it is reopened with
back-off and each subscription is brought up to date: the items that changed meanwhile are
reported once, with their current value (a deleted one with empty content), then changes flow
again, none reported twice (the change numbers tell which ones the catch-up covered).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

from pylotto.components._backends.redis_client import RedisClient, RedisSettings
from pylotto.components.base import ComponentContext
from pylotto.components.configuration.base import (
    ChangeFeed,
    ChangeHandler,
    ConfigurationItem,
    ConfigurationStore,
    ItemsQuery,
    Subscription,
)
from pylotto.core.errors import Internal, PylottoError, Unavailable
from pylotto.core.types import Metadata

HASH_PREFIX = "pylotto-config:"
SEQ_PREFIX = "pylotto-config-seq:"
CHANNEL_PREFIX = "pylotto-config-changes:"

# KEYS: (hash, change counter) per address; ARGV[1]: the number of addresses n, ARGV[2..n+1]
# their channels, then (address index, field, value) triples, value "" deleting the field.
_WRITE = """
local n = tonumber(ARGV[1])
local changed = {}
for a = 1, n do changed[a] = {} end
for i = n + 2, #ARGV, 3 do
  local a, field, value = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  local hash = KEYS[2 * a - 1]
  if value == "" then
    if redis.call("HDEL", hash, field) == 1 then table.insert(changed[a], {field, ""}) end
  else
    redis.call("HSET", hash, field, value)
    table.insert(changed[a], {field, value})
  end
end
for a = 1, n do
  if #changed[a] > 0 then
    local seq = string.format("%d", redis.call("INCR", KEYS[2 * a]))
    redis.call("PUBLISH", ARGV[1 + a],
               '{"seq":' .. seq .. ',"items":' .. cjson.encode(changed[a]) .. '}')
  end
end
return 0
"""

# KEYS: hash, change counter; ARGV: the fields wanted (every field when none).
# Returns {change number, {field, value, field, value...}}: the items as of that change.
_SNAPSHOT = """
local seq = redis.call("GET", KEYS[2]) or "0"
if #ARGV == 0 then return {seq, redis.call("HGETALL", KEYS[1])} end
local found = {}
for _, field in ipairs(ARGV) do
  local value = redis.call("HGET", KEYS[1], field)
  if value then
    found[#found + 1] = field
    found[#found + 1] = value
  end
end
return {seq, found}
"""


class RedisConfigurationSettings(RedisSettings):
    pass


def address(app_id: str, group: str, label: str) -> str:
    return json.dumps([app_id, group, label], ensure_ascii=False)


def hash_key(app_id: str, group: str, label: str) -> str:
    return HASH_PREFIX + address(app_id, group, label)


def seq_key(app_id: str, group: str, label: str) -> str:
    return SEQ_PREFIX + address(app_id, group, label)


def channel_name(app_id: str, group: str, label: str) -> str:
    return CHANNEL_PREFIX + address(app_id, group, label)


def _encode(item: ConfigurationItem) -> str:
    return json.dumps({"content": item.content, "tags": item.tags, "metadata": item.metadata},
                      ensure_ascii=False)


def _decode(key: str, group: str, label: str, raw: bytes | str) -> ConfigurationItem:
    body = json.loads(raw)
    return ConfigurationItem(key=key, content=str(body.get("content") or ""), group=group,
                             label=label, tags=_strings(body.get("tags")),
                             metadata=_strings(body.get("metadata")))


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()} if isinstance(value, dict) else {}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _RedisSubscription(Subscription):
    """A handler and what it has seen: ``known`` (its items as of change ``seq``) lets a
    reconnect report exactly what changed while the connection was down."""

    def __init__(self, store: RedisConfigurationStore, query: ItemsQuery,
                 handler: ChangeHandler) -> None:
        self.store = store
        self.query = query
        self.handler = handler
        self.channel = channel_name(query.app_id, query.group, query.label)
        self.known: dict[str, ConfigurationItem] = {}
        self.seq = 0
        """The change number ``known`` reflects."""
        self.caught_up_to = 0
        """Changes up to this number were reported by a catch-up: later messages skip them."""
        self.early: list[tuple[int, list[ConfigurationItem]]] | None = []
        """Changes received before the first snapshot was taken (None once it was)."""
        self.closed = False

    def wants(self, item: ConfigurationItem) -> bool:
        return not self.query.keys or item.key in self.query.keys

    def _remember(self, items: Sequence[ConfigurationItem]) -> None:
        for item in items:
            if item.content:
                self.known[item.key] = item
            else:
                self.known.pop(item.key, None)

    def _call(self, items: list[ConfigurationItem]) -> None:
        try:
            self.handler(items)
        except Exception:
            self.store.context.logger.exception(
                "configuration store %s: a subscriber's handler failed", self.store.name)

    def receive(self, seq: int, items: Sequence[ConfigurationItem]) -> None:
        """A change published on the subscription's channel."""
        if self.closed or seq <= self.caught_up_to:
            return
        matched = [item for item in items if self.wants(item)]
        if self.early is not None:
            self.early.append((seq, matched))
        elif seq > self.seq:
            self._remember(matched)
            self.seq = seq
        if matched:
            self._call(matched)

    def load(self, seq: int, items: Sequence[ConfigurationItem]) -> None:
        """The first snapshot, taken once the channel was confirmed (reports nothing)."""
        if self.early is None:
            return
        self.known = {item.key: item for item in items}
        self.seq = seq
        for number, changed in self.early:
            if number > self.seq:
                self._remember(changed)
                self.seq = number
        self.early = None

    def catch_up(self, seq: int, items: Sequence[ConfigurationItem]) -> None:
        """A snapshot taken after a reconnect: report what differs from ``known``."""
        if self.closed:
            return
        if self.early is not None:  # subscribe() still loading: nothing was reported yet
            self.load(seq, items)
            self.caught_up_to = seq
            return
        current = {item.key: item for item in items}
        changed = [item for key, item in current.items() if self.known.get(key) != item]
        gone = [ConfigurationItem(key, "", self.query.group, self.query.label)
                for key in self.known if key not in current]
        self.known, self.seq, self.caught_up_to = current, seq, seq
        if changed or gone:
            self._call(changed + gone)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.store._forget(self)


class _Listener(ChangeFeed):
    """The store's pub/sub connection: the first one is opened by ``subscribe`` (so that it
    fails when the server is down), the next ones by :meth:`watch`, which then brings every
    subscription up to date before reading changes again."""

    store: RedisConfigurationStore

    def __init__(self, store: RedisConfigurationStore, pubsub: Any,
                 early: list[dict[str, Any]]) -> None:
        super().__init__(store, "subscription connection")
        self._first: tuple[Any, list[dict[str, Any]]] | None = (pubsub, early)

    async def watch(self, resuming: bool) -> None:
        store = self.store
        if self._first is not None:
            (pubsub, early), self._first = self._first, None
        else:
            async with store._lock:
                if not store._subscriptions:  # nobody listens: the next subscribe restarts
                    store._listener = None
                    return
                pubsub, early = await store._connect(
                    list(dict.fromkeys(s.channel for s in store._subscriptions)))
        try:
            if resuming:
                await store._catch_up()
            self.caught_up()
            for message in early:
                store._handle(message)
            await store._read(pubsub)
        finally:
            store._lost()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), store.client.timeout)


class RedisConfigurationStore(ConfigurationStore):
    Settings = RedisConfigurationSettings
    settings: RedisConfigurationSettings

    def __init__(self, name: str, settings: RedisConfigurationSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = RedisClient(settings, f"configuration store {name}")
        self._write = self.client.script(_WRITE)
        self._snapshot_script = self.client.script(_SNAPSHOT)
        self._subscriptions: set[_RedisSubscription] = set()
        self._lock = asyncio.Lock()
        """Serialises (re)connecting and the SUBSCRIBE/UNSUBSCRIBE commands."""
        self._pubsub: Any = None
        """The live pub/sub connection; None while there is none (not started, reconnecting)."""
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        """Channel → done once Redis confirmed the SUBSCRIBE on the live connection."""
        self._listener: _Listener | None = None
        self.listening = asyncio.Event()
        """Set while the pub/sub connection is up (tests wait on it)."""

    async def init(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.closed = True
        self._subscriptions.clear()
        listener, self._listener = self._listener, None
        if listener is not None and listener.task is not None:
            listener.task.cancel()
            done, _ = await asyncio.wait({listener.task}, timeout=2 * self.client.timeout)
            if not done:  # never wait forever on a driver that will not let go
                self.context.logger.error("configuration store %s: the subscription listener "
                                          "did not stop", self.name)
        self._lost()
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    # ---- items -----------------------------------------------------------------------------

    async def get(self, query: ItemsQuery) -> list[ConfigurationItem]:
        key = hash_key(query.app_id, query.group, query.label)
        if query.keys:
            wanted = list(dict.fromkeys(query.keys))
            values = await self.client.call(lambda r: r.hmget(key, wanted))
            return [_decode(k, query.group, query.label, v)
                    for k, v in zip(wanted, values, strict=True) if v is not None]
        found = await self.client.call(lambda r: r.hgetall(key))
        items = [_decode(_text(k), query.group, query.label, v) for k, v in found.items()]
        return sorted(items, key=lambda item: item.key)

    async def _snapshot(self, query: ItemsQuery) -> tuple[int, list[ConfigurationItem]]:
        """The items ``query`` covers and the number of the last change they reflect."""
        keys = [hash_key(query.app_id, query.group, query.label),
                seq_key(query.app_id, query.group, query.label)]
        seq, flat = await self._snapshot_script(keys=keys, args=list(dict.fromkeys(query.keys)))
        items = [_decode(_text(flat[i]), query.group, query.label, flat[i + 1])
                 for i in range(0, len(flat), 2)]
        return int(seq), sorted(items, key=lambda item: item.key)

    async def _apply(self, app_id: str, changes: Sequence[tuple[ConfigurationItem, str]]) -> None:
        """One script: write every (item, stored value or "" to delete), publish per address."""
        addresses: list[tuple[str, str]] = []
        triples: list[str] = []
        for item, value in changes:
            where = (item.group, item.label)
            if where not in addresses:
                addresses.append(where)
            triples += [str(addresses.index(where) + 1), item.key, value]
        keys: list[str] = []
        for group, label in addresses:
            keys += [hash_key(app_id, group, label), seq_key(app_id, group, label)]
        channels = [channel_name(app_id, group, label) for group, label in addresses]
        await self._write(keys=keys, args=[str(len(addresses)), *channels, *triples])

    async def set(self, app_id: str, items: Sequence[ConfigurationItem],
                  metadata: Metadata) -> None:
        if items:
            await self._apply(app_id, [(item, _encode(item)) for item in items])

    async def delete(self, query: ItemsQuery) -> None:
        keys = list(dict.fromkeys(query.keys))
        if keys:
            await self._apply(query.app_id, [
                (ConfigurationItem(key, "", query.group, query.label), "") for key in keys])

    # ---- subscriptions ---------------------------------------------------------------------

    async def subscribe(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        subscription = _RedisSubscription(self, query, handler)
        channel = subscription.channel
        async with self._lock:
            if self._listener is None or not self._listener.running:
                self._reap_listener()
                channels = [*(s.channel for s in self._subscriptions), channel]
                # fails now if the server is down
                pubsub, early = await self._connect(list(dict.fromkeys(channels)))
                self._listener = _Listener(self, pubsub, early)
                self._listener.start()
            self._subscriptions.add(subscription)
            confirmed = self._confirmed.get(channel)
            if confirmed is None:
                confirmed = self._confirmed[channel] = asyncio.get_running_loop().create_future()
                pubsub = self._pubsub
                if pubsub is not None:  # else the listener is reconnecting: it subscribes it
                    try:
                        await self.client.call(lambda _: pubsub.subscribe(channel))
                    except BaseException:
                        self._subscriptions.discard(subscription)
                        self._confirmed.pop(channel, None)
                        raise
        try:
            try:
                async with asyncio.timeout(self.client.timeout):
                    await asyncio.shield(confirmed)
            except TimeoutError:
                raise Unavailable(f"{self.client.what}: redis did not confirm the subscription "
                                  "in time") from None
            subscription.load(*await self._snapshot(query))
        except BaseException:
            await subscription.close()
            raise
        return subscription

    async def _forget(self, subscription: _RedisSubscription) -> None:
        """Drop a closed subscription; UNSUBSCRIBE its channel when nobody else uses it."""
        self._subscriptions.discard(subscription)
        channel = subscription.channel
        async with self._lock:
            if any(s.channel == channel for s in self._subscriptions):
                return
            confirmed = self._confirmed.pop(channel, None)
            if confirmed is not None and not confirmed.done():
                confirmed.set_exception(Unavailable(f"{self.client.what}: subscription closed"))
                confirmed.exception()  # retrieved: its only waiter gave up
            pubsub = self._pubsub
            if pubsub is not None and confirmed is not None:
                with contextlib.suppress(PylottoError):  # a broken connection is reopened anyway
                    await self.client.call(lambda _: pubsub.unsubscribe(channel))

    async def _connect(self, channels: list[str]) -> tuple[Any, list[dict[str, Any]]]:
        """A pub/sub connection SUBSCRIBEd to ``channels``, once Redis confirmed every one
        (called with the lock held), and the messages that arrived meanwhile."""
        pubsub = self.client.redis.pubsub()

        async def subscribe(_: Any) -> list[dict[str, Any]]:
            early: list[dict[str, Any]] = []
            if not channels:
                await pubsub.ping()
                return early
            await pubsub.subscribe(*channels)
            pending = set(channels)
            while pending:
                message = await pubsub.get_message(timeout=self.client.timeout)
                if message is None:
                    raise TimeoutError
                if message["type"] == "subscribe":
                    pending.discard(_text(message["channel"]))
                elif message["type"] == "message":
                    early.append(message)
            return early

        try:
            early = await self.client.call(subscribe)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        loop = asyncio.get_running_loop()
        for channel in channels:
            confirmed = self._confirmed.get(channel)
            if confirmed is None or confirmed.done():
                confirmed = self._confirmed[channel] = loop.create_future()
            confirmed.set_result(None)  # wakes a subscribe() made while reconnecting
        self._pubsub = pubsub
        self.listening.set()
        return pubsub, early

    def _reap_listener(self) -> None:
        """Log how a listener that ended by itself failed (it only ends on a bug)."""
        listener, self._listener = self._listener, None
        task = None if listener is None else listener.task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                self.context.logger.error("configuration store %s: the subscription listener "
                                          "failed: %r", self.name, error)

    def _lost(self) -> None:
        """The pub/sub connection is gone: wake whoever waits for a confirmation on it."""
        self._pubsub = None
        self.listening.clear()
        for confirmed in self._confirmed.values():
            if not confirmed.done():
                confirmed.set_exception(Unavailable(
                    f"{self.client.what}: redis unreachable: subscription connection lost"))
                confirmed.exception()  # retrieved: nobody may be waiting any more
        self._confirmed = {}

    async def _read(self, pubsub: Any) -> None:
        """Handle messages until the connection fails; a silent one is pinged and must answer
        within ``timeout``."""
        timeout = self.client.timeout
        pinged: float | None = None
        while True:
            message = await pubsub.get_message(timeout=timeout)
            if message is not None:
                pinged = None  # anything received proves the connection alive
                self._handle(message)
                continue
            if pinged is not None and time.monotonic() - pinged >= timeout:
                raise ConnectionError("the server did not answer PING in time")
            if pinged is None:
                async with asyncio.timeout(timeout):
                    await pubsub.ping()
                pinged = time.monotonic()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            confirmed = self._confirmed.get(_text(message["channel"]))
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif kind == "message":
            try:
                self._dispatch(_text(message["channel"]), message["data"])
            except (ValueError, KeyError, TypeError) as exc:
                self.context.logger.warning(
                    "configuration store %s: malformed change notification ignored: %r",
                    self.name, exc)

    def _dispatch(self, channel: str, data: bytes | str) -> None:
        subscriptions = [s for s in self._subscriptions if s.channel == channel]
        if not subscriptions:
            return
        change = json.loads(data)
        query = subscriptions[0].query
        items = [ConfigurationItem(_text(key), "", query.group, query.label) if not value
                 else _decode(_text(key), query.group, query.label, value)
                 for key, value in change["items"]]
        for subscription in subscriptions:
            subscription.receive(int(change["seq"]), items)

    async def _catch_up(self) -> None:
        """Bring every subscription up to date; a failure (raised) makes the listener open the
        connection again and retry, so no change made while it was down goes unreported."""
        for subscription in list(self._subscriptions):
            try:
                subscription.catch_up(*await self._snapshot(subscription.query))
            except Internal as exc:  # its items are unreadable: waiting will not help
                self.context.logger.error(
                    "configuration store %s: catching a subscription up failed: %s",
                    self.name, exc.message)
