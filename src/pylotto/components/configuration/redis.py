"""``configuration.redis``: Dapr's layout — plain Redis keys holding ``value||version``, watched
with keyspace notifications (as components-contrib ``configuration/redis``).

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``poolSize`` / ``maxConns``, ``timeout`` (see :mod:`pylotto.components._backends.redis_client`),
and pylotto's own ``keyPrefix`` (default empty, Dapr's layout): only keys starting with it are
items, named without it.

- An item is the Redis string at its key: ``value||version`` (``redis-cli SET key
  "value||v1"``), or ``value`` (version empty). A key holding another type is skipped, as is
  an empty value; reading every item (no keys asked) scans the keys of the database (Dapr:
  ``KEYS *``; a ``SCAN`` here, which does not block the server).
- Items are addressed by key only: the app id is ignored (apps sharing the database share
  the items, as in Dapr) and a group or label other than the default is refused.
- Saving (Layotto's SaveConfiguration) writes ``content`` (``content||version`` with a
  version) in one MULTI; content containing ``||`` is refused (reading would cut it), so are
  tags and metadata (nowhere to keep them). Deleting DELs the keys.
- A subscription SUBSCRIBEs to ``__keyspace@<db>__:<key>`` for each of its keys, or
  PSUBSCRIBEs to ``__keyspace@<db>__:<prefix>*`` for every key; each notification is answered
  with a GET of the key and its handler gets the current item (content empty when the key is
  gone). Like Dapr, the first subscription turns keyspace notifications on (``CONFIG SET
  notify-keyspace-events``) — adding the flags it needs, ``Kg$xe``, to those already set
  rather than replacing them; where CONFIG is refused (managed Redis) it warns that the
  server must have them, since without them no change is seen.
- Sentinel (``failover: true``): reads, writes and the notification connection go to the
  master; after a failover the connection is reopened on the new master, whose notification
  setting is checked again. Cluster (``redisType: cluster``): saves are one MULTI per hash
  slot; each master notifies only of its own keys, so a subscription listens on every master
  (:class:`~pylotto.components._backends.redis_topology.ClusterPubSub`; Dapr's store listens
  on one node and misses the others' changes), and turns notifications on on each.
- The notification connection is pinged when silent for ``timeout``; after a loss it is
  reopened with back-off and each subscription is told what changed meanwhile (what differs
  from what it last saw).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from pydantic import Field

from pylotto.components._backends.redis_client import RedisClient, RedisSettings, map_error
from pylotto.components._backends.redis_topology import ClusterPubSub
from pylotto.components.base import ComponentContext
from pylotto.components.configuration.base import (
    DEFAULT_GROUP,
    DEFAULT_LABEL,
    ChangeFeed,
    ChangeHandler,
    ConfigurationItem,
    ConfigurationStore,
    ItemsQuery,
    Subscription,
)
from pylotto.core.errors import InvalidArgument, PylottoError, Unavailable, Unsupported
from pylotto.core.types import Metadata

SEPARATOR = "||"
NOTIFY_FLAGS = "Kg$xe"
"""Keyspace events on generic and string commands, expiry and eviction (Dapr's setting)."""
SCAN_COUNT = 500


class RedisConfigurationSettings(RedisSettings):
    key_prefix: str = Field("", alias="keyPrefix")


def parse(redis_key: str, raw: str, prefix: str) -> ConfigurationItem | None:
    """The item of a stored ``value||version`` (None for an empty value)."""
    value, _, rest = raw.partition(SEPARATOR)
    if not value:
        return None
    return ConfigurationItem(key=redis_key[len(prefix):], content=value, group=DEFAULT_GROUP,
                             label=DEFAULT_LABEL, version=rest.split(SEPARATOR, 1)[0])


def stored(item: ConfigurationItem) -> str:
    return f"{item.content}{SEPARATOR}{item.version}" if item.version else item.content


def missing_flags(current: str) -> str:
    """The notification flags of ``current`` plus those Dapr's store needs; "" if none lack."""
    have = set(current)
    covered = have | (set("g$lshzxe") if "A" in have else set())
    lacking = [flag for flag in NOTIFY_FLAGS if flag not in covered]
    return current + "".join(lacking) if lacking else ""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Watch(Subscription):
    """One subscription: its handler, the channel it listens on and what it last saw."""

    def __init__(self, store: RedisConfigurationStore, query: ItemsQuery,
                 handler: ChangeHandler) -> None:
        self.store = store
        self.query = query
        self.handler = handler
        prefix = store.channel_prefix + store.settings.key_prefix
        self.channels = tuple(dict.fromkeys(prefix + key for key in query.keys))
        self.pattern = "" if query.keys else _glob_escape(prefix) + "*"
        self.known: dict[str, ConfigurationItem] = {}
        self.closed = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.pattern,) if self.pattern else self.channels

    def wants(self, key: str) -> bool:
        return key in self.query.keys if self.query.keys else True

    def report(self, items: list[ConfigurationItem]) -> None:
        if self.closed or not items:
            return
        for item in items:
            if item.content:
                self.known[item.key] = item
            else:
                self.known.pop(item.key, None)
        try:
            self.handler(items)
        except Exception:
            self.store.context.logger.exception(
                "configuration store %s: a subscriber's handler failed", self.store.name)

    def catch_up(self, current: Sequence[ConfigurationItem]) -> None:
        """After a reconnect: report what differs from what was last seen."""
        now = {item.key: item for item in current}
        changed = [item for key, item in now.items() if self.known.get(key) != item]
        gone = [ConfigurationItem(key, "", DEFAULT_GROUP, DEFAULT_LABEL)
                for key in self.known if key not in now]
        self.report(changed + gone)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.store._forget(self)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


class _Notifications(ChangeFeed):
    """The store's keyspace-notification connection."""

    store: RedisConfigurationStore

    def __init__(self, store: RedisConfigurationStore, pubsub: Any) -> None:
        super().__init__(store, "keyspace notification connection")
        self._first: Any = pubsub

    async def watch(self, resuming: bool) -> None:
        store = self.store
        if self._first is not None:
            pubsub, self._first = self._first, None
        else:
            async with store._lock:
                if not store._watches:
                    store._feed = None
                    return
                # after a failover the master is another server: its notification
                # setting is its own (CONFIG SET is not replicated)
                store._notifications_checked = False
                await store._enable_notifications()
                pubsub = await store._connect()
        try:
            if resuming:
                for watch in list(store._watches):
                    watch.catch_up(await store._items_of(watch.query))
            self.caught_up()
            await store._read(pubsub)
        finally:
            store._lost()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(store.client.timeout):
                    await pubsub.aclose()


class RedisConfigurationStore(ConfigurationStore):
    Settings = RedisConfigurationSettings
    settings: RedisConfigurationSettings

    def __init__(self, name: str, settings: RedisConfigurationSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = RedisClient(settings, f"configuration store {name}")
        self.channel_prefix = f"__keyspace@{settings.redis_db}__:"
        self._watches: set[_Watch] = set()
        self._lock = asyncio.Lock()
        """Serialises (re)connecting and the SUBSCRIBE/UNSUBSCRIBE commands."""
        self._pubsub: Any = None
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        """Channel or pattern → done once Redis confirmed it on the live connection."""
        self._feed: _Notifications | None = None
        self._notifications_checked = False
        self.listening = asyncio.Event()
        """Set while the notification connection is up (tests wait on it)."""

    async def init(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        for watch in self._watches:
            watch.closed = True
        self._watches.clear()
        feed, self._feed = self._feed, None
        if feed is not None and feed.task is not None:
            feed.task.cancel()
            done, _ = await asyncio.wait({feed.task}, timeout=2 * self.client.timeout)
            if not done:
                self.context.logger.error("configuration store %s: the notification "
                                          "listener did not stop", self.name)
        self._lost()
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    # ---- items -----------------------------------------------------------------------------

    def _check_address(self, group: str, label: str) -> None:
        if group != self.default_group or label != self.default_label:
            raise Unsupported(
                f"configuration store {self.name} doesn't support groups and labels "
                f"(configuration.redis keeps items by key only, as Dapr's): group {group!r}, "
                f"label {label!r}")

    async def get(self, query: ItemsQuery) -> list[ConfigurationItem]:
        self._check_address(query.group, query.label)
        return await self._items_of(query)

    async def _items_of(self, query: ItemsQuery) -> list[ConfigurationItem]:
        prefix = self.settings.key_prefix
        if query.keys:
            redis_keys = [prefix + key for key in dict.fromkeys(query.keys)]
        else:
            redis_keys = sorted(await self._scan(prefix))
        return await self._read_keys(redis_keys)

    async def _scan(self, prefix: str) -> list[str]:
        async def scan(r: Any) -> list[str]:
            return [_text(k) async for k in r.scan_iter(match=_glob_escape(prefix) + "*",
                                                        count=SCAN_COUNT)]
        return await self.client.call(scan)

    async def _read_keys(self, redis_keys: list[str]) -> list[ConfigurationItem]:
        if not redis_keys:
            return []

        async def read(r: Any) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            for key in redis_keys:
                pipe.get(key)
            result: list[Any] = await pipe.execute(raise_on_error=False)
            return result

        values = await self.client.call(read)
        items = []
        for key, value in zip(redis_keys, values, strict=True):
            if isinstance(value, Exception):
                if "WRONGTYPE" not in str(value):
                    raise self._error(value)
                self.context.logger.debug("configuration store %s: key %s is not a string: "
                                          "skipped", self.name, key)
                continue
            if value is not None and (item := parse(key, _text(value),
                                                    self.settings.key_prefix)) is not None:
                items.append(item)
        return items

    def _error(self, exc: Exception) -> PylottoError:
        return map_error(exc, self.client.what)

    async def set(self, app_id: str, items: Sequence[ConfigurationItem],
                  metadata: Metadata) -> None:
        for item in items:
            self._check_address(item.group, item.label)
            if SEPARATOR in item.content or SEPARATOR in item.version:
                raise InvalidArgument(f"configuration item {item.key}: configuration.redis "
                                      f"stores value{SEPARATOR}version: the value may not "
                                      f"contain {SEPARATOR!r}")
            if item.tags or item.metadata:
                raise Unsupported(f"configuration store {self.name} doesn't support tags and "
                                  "metadata (configuration.redis keeps a value and a version "
                                  f"per key): item {item.key}")
        prefix = self.settings.key_prefix

        async def write(r: Any, part: Sequence[ConfigurationItem]) -> None:
            pipe = r.pipeline(transaction=True)
            for item in part:
                pipe.set(prefix + item.key, stored(item))
            await pipe.execute()

        # one MULTI; in cluster mode one per hash slot (a MULTI may not span slots)
        for part in self._by_slot(items):
            await self.client.call(partial(write, part=part))

    def _by_slot(self, items: Sequence[ConfigurationItem]) -> list[list[ConfigurationItem]]:
        if not self.client.clustered:
            return [list(items)] if items else []
        from redis.crc import key_slot

        parts: dict[int, list[ConfigurationItem]] = {}
        for item in items:
            slot = key_slot((self.settings.key_prefix + item.key).encode())
            parts.setdefault(slot, []).append(item)
        return list(parts.values())

    async def delete(self, query: ItemsQuery) -> None:
        self._check_address(query.group, query.label)
        keys = [self.settings.key_prefix + key for key in dict.fromkeys(query.keys)]
        if keys:
            await self.client.call(lambda r: r.delete(*keys))

    # ---- subscriptions ---------------------------------------------------------------------

    async def _enable_notifications(self) -> None:
        if self._notifications_checked:
            return
        self._notifications_checked = True
        setting = "notify-keyspace-events"

        async def enable(r: Any) -> None:
            # each server's setting is its own: in cluster mode, every master's
            nodes = r.get_primaries() if self.client.clustered else [None]
            for node in nodes:
                where = {"target_nodes": node} if node is not None else {}
                current = await r.config_get(setting, **where)
                wanted = missing_flags(_text(current.get(setting, "")))
                if wanted:
                    await r.config_set(setting, wanted, **where)

        try:
            await self.client.call(enable)
        except PylottoError as exc:
            if isinstance(exc, Unavailable):
                self._notifications_checked = False
                raise
            self.context.logger.warning(
                "configuration store %s: could not turn keyspace notifications on (%s): "
                "subscriptions see changes only if the server's notify-keyspace-events "
                "has %s", self.name, exc.message, NOTIFY_FLAGS)

    async def subscribe(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        self._check_address(query.group, query.label)
        await self._enable_notifications()
        watch = _Watch(self, query, handler)
        async with self._lock:
            if self._feed is None or not self._feed.running:
                self._watches.add(watch)
                try:
                    pubsub = await self._connect()  # fails now if the server is down
                except BaseException:
                    self._watches.discard(watch)
                    raise
                self._feed = _Notifications(self, pubsub)
                self._feed.start()
                waiting = [self._confirmed[n] for n in watch.names]
            else:
                self._watches.add(watch)
                waiting = await self._listen(watch)
        try:
            try:
                async with asyncio.timeout(self.client.timeout):
                    await asyncio.gather(*(asyncio.shield(f) for f in waiting))
            except TimeoutError:
                raise Unavailable(f"{self.client.what}: redis did not confirm the subscription "
                                  "in time") from None
            watch.known = {item.key: item for item in await self._items_of(query)}
        except BaseException:
            await watch.close()
            raise
        return watch

    async def _listen(self, watch: _Watch) -> list[asyncio.Future[None]]:
        """SUBSCRIBE / PSUBSCRIBE what ``watch`` needs on the live connection (lock held)."""
        waiting = []
        loop = asyncio.get_running_loop()
        for name in watch.names:
            confirmed = self._confirmed.get(name)
            if confirmed is None:
                confirmed = self._confirmed[name] = loop.create_future()
                pubsub = self._pubsub
                if pubsub is not None:  # else the feed is reconnecting: it subscribes it
                    try:
                        await self.client.call(partial(self._send, pubsub, name))
                    except BaseException:
                        self._watches.discard(watch)
                        self._confirmed.pop(name, None)
                        raise
            waiting.append(confirmed)
        return waiting

    @staticmethod
    async def _send(pubsub: Any, name: str, _redis: Any, *, unsubscribe: bool = False) -> None:
        pattern = name.endswith("*")
        if unsubscribe:
            await (pubsub.punsubscribe(name) if pattern else pubsub.unsubscribe(name))
        else:
            await (pubsub.psubscribe(name) if pattern else pubsub.subscribe(name))

    async def _forget(self, watch: _Watch) -> None:
        self._watches.discard(watch)
        async with self._lock:
            for name in watch.names:
                if any(name in other.names for other in self._watches):
                    continue
                confirmed = self._confirmed.pop(name, None)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_exception(Unavailable(f"{self.client.what}: subscription "
                                                        "closed"))
                    confirmed.exception()
                pubsub = self._pubsub
                if pubsub is not None and confirmed is not None:
                    with contextlib.suppress(PylottoError):
                        await self.client.call(
                            partial(self._send, pubsub, name, unsubscribe=True))

    async def _connect(self) -> Any:
        """A connection listening on what every subscription needs, once Redis confirmed
        it all (called with the lock held)."""
        names = list(dict.fromkeys(n for w in self._watches for n in w.names))
        pubsub = (ClusterPubSub.of(self.client.redis, self.settings) if self.client.clustered
                  else self.client.redis.pubsub())

        async def listen(_: Any) -> None:
            channels = [n for n in names if not n.endswith("*")]
            patterns = [n for n in names if n.endswith("*")]
            if channels:
                await pubsub.subscribe(*channels)
            if patterns:
                await pubsub.psubscribe(*patterns)
            pending = set(names)
            while pending:
                message = await pubsub.get_message(timeout=self.client.timeout)
                if message is None:
                    raise TimeoutError
                if message["type"] in ("subscribe", "psubscribe"):
                    pending.discard(_text(message["channel"]))

        try:
            await self.client.call(listen)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        loop = asyncio.get_running_loop()
        for name in names:
            confirmed = self._confirmed.get(name)
            if confirmed is None or confirmed.done():
                confirmed = self._confirmed[name] = loop.create_future()
            confirmed.set_result(None)
        self._pubsub = pubsub
        self.listening.set()
        return pubsub

    def _lost(self) -> None:
        self._pubsub = None
        self.listening.clear()
        for confirmed in self._confirmed.values():
            if not confirmed.done():
                confirmed.set_exception(Unavailable(
                    f"{self.client.what}: redis unreachable: notification connection lost"))
                confirmed.exception()
        self._confirmed = {}

    async def _read(self, pubsub: Any) -> None:
        """Handle notifications until the connection fails; a silent one is pinged and must
        answer within ``timeout``."""
        timeout = self.client.timeout
        pinged: float | None = None
        while True:
            message = await pubsub.get_message(timeout=timeout)
            if message is not None:
                pinged = None
                await self._handle(message)
                continue
            if pinged is not None and time.monotonic() - pinged >= timeout:
                raise ConnectionError("the server did not answer PING in time")
            if pinged is None:
                async with asyncio.timeout(timeout):
                    await pubsub.ping()
                pinged = time.monotonic()

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("subscribe", "psubscribe"):
            confirmed = self._confirmed.get(_text(message["channel"]))
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
            return
        if kind not in ("message", "pmessage"):
            return
        channel = _text(message["channel"])
        prefix = self.channel_prefix + self.settings.key_prefix
        if not channel.startswith(prefix):
            return
        key = channel[len(prefix):]
        # a watch hears its own channels or its pattern (never both: one report per change)
        heard = _text(message["pattern"]) if kind == "pmessage" else channel
        watches = [w for w in self._watches if heard in w.names and w.wants(key)]
        if not watches:
            return
        found = await self._read_keys([self.settings.key_prefix + key])
        items = found or [ConfigurationItem(key, "", DEFAULT_GROUP, DEFAULT_LABEL)]
        for watch in watches:
            watch.report(items)
