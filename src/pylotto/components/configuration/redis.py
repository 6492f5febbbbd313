"""``redis``: configuration items in Redis, with change notifications over Redis pub/sub.

Metadata: ``redisHost``, ``redisUsername``, ``redisPassword``, ``redisDB``, ``enableTLS``,
``poolSize``, ``timeout`` (see :mod:`pylotto.components.redis_client`).

Layout: one hash per (app id, group, label), named ``pylotto-config:`` + the JSON array
``[app_id, group, label]``; a field per item key holding ``{"content", "tags", "metadata"}``
as JSON. Every save or delete is one Lua script that writes the hash and PUBLISHes the change
on the channel ``pylotto-config-changes`` in the same step, so subscribers see changes in the
order Redis applied them. One pub/sub connection per store feeds every subscription; after a
lost connection it reconnects with back-off and each subscription is brought up to date by
comparing its items with the store (changes made while it was away arrive as one update each,
intermediate values excepted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

from pylotto.components.base import ComponentContext
from pylotto.components.configuration.base import (
    ChangeHandler,
    ConfigurationItem,
    ConfigurationStore,
    ItemsQuery,
    Subscription,
)
from pylotto.components.redis_client import RedisClient, RedisSettings
from pylotto.errors import PylottoError
from pylotto.types import Metadata

CHANNEL = "pylotto-config-changes"
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)

# KEYS: the hashes; ARGV[1] channel, ARGV[2] notification, then (hash index, field, value|"")
_WRITE = """
for i = 3, #ARGV, 3 do
  local key = KEYS[tonumber(ARGV[i])]
  if ARGV[i + 2] == "" then redis.call("HDEL", key, ARGV[i + 1])
  else redis.call("HSET", key, ARGV[i + 1], ARGV[i + 2]) end
end
redis.call("PUBLISH", ARGV[1], ARGV[2])
return 0
"""


class RedisConfigurationSettings(RedisSettings):
    pass


def hash_key(app_id: str, group: str, label: str) -> str:
    return "pylotto-config:" + json.dumps([app_id, group, label], ensure_ascii=False)


def _encode(item: ConfigurationItem) -> str:
    return json.dumps({"content": item.content, "tags": item.tags, "metadata": item.metadata},
                      ensure_ascii=False)


def _decode(key: str, group: str, label: str, raw: bytes | str) -> ConfigurationItem:
    body = json.loads(raw)
    return ConfigurationItem(key=key, content=body.get("content", ""), group=group, label=label,
                             tags=dict(body.get("tags") or {}),
                             metadata=dict(body.get("metadata") or {}))


def _item_json(item: ConfigurationItem) -> dict[str, Any]:
    return {"key": item.key, "content": item.content, "group": item.group, "label": item.label,
            "tags": item.tags, "metadata": item.metadata}


class _RedisSubscription(Subscription):
    def __init__(self, store: RedisConfigurationStore, query: ItemsQuery,
                 handler: ChangeHandler, known: dict[str, ConfigurationItem]) -> None:
        self.store = store
        self.query = query
        self.handler = handler
        self.known = known
        """The items as this subscription last saw them (to catch up after a reconnect)."""

    def deliver(self, items: list[ConfigurationItem]) -> None:
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

    async def catch_up(self) -> None:
        current = {item.key: item for item in await self.store.get(self.query)}
        changed = [item for key, item in current.items() if self.known.get(key) != item]
        gone = [ConfigurationItem(key, "", self.query.group, self.query.label)
                for key in self.known if key not in current]
        if changed or gone:
            self.deliver(changed + gone)

    async def close(self) -> None:
        self.store._subscriptions.discard(self)


class RedisConfigurationStore(ConfigurationStore):
    Settings = RedisConfigurationSettings
    settings: RedisConfigurationSettings

    def __init__(self, name: str, settings: RedisConfigurationSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = RedisClient(settings, f"configuration store {name}")
        self._write = self.client.script(_WRITE)
        self._subscriptions: set[_RedisSubscription] = set()
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the pub/sub connection is up (tests wait on it)."""

    async def init(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        self._subscriptions.clear()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
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
        items = [_decode(k.decode(), query.group, query.label, v) for k, v in found.items()]
        return sorted(items, key=lambda item: item.key)

    async def _apply(self, app_id: str, items: Sequence[ConfigurationItem],
                     values: Sequence[str]) -> None:
        keys: list[str] = []
        args: list[str] = [CHANNEL, json.dumps({"app_id": app_id,
                                                "items": [_item_json(i) for i in items]})]
        for item, value in zip(items, values, strict=True):
            key = hash_key(app_id, item.group, item.label)
            if key not in keys:
                keys.append(key)
            args += [str(keys.index(key) + 1), item.key, value]
        await self._write(keys=keys, args=args)

    async def set(self, app_id: str, items: Sequence[ConfigurationItem],
                  metadata: Metadata) -> None:
        if items:
            await self._apply(app_id, items, [_encode(item) for item in items])

    async def delete(self, query: ItemsQuery) -> None:
        existing = {item.key for item in await self.get(query)}
        gone = [ConfigurationItem(key, "", query.group, query.label)
                for key in dict.fromkeys(query.keys) if key in existing]
        if gone:
            await self._apply(query.app_id, gone, ["" for _ in gone])

    # ---- subscriptions ---------------------------------------------------------------------

    async def subscribe(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        known = {item.key: item for item in await self.get(query)}
        if self._listener is None or self._listener.done():
            pubsub = await self._connect()  # fails now if the server is down
            self._listener = asyncio.create_task(self._listen_loop(pubsub))
        subscription = _RedisSubscription(self, query, handler, known)
        self._subscriptions.add(subscription)
        return subscription

    async def _connect(self) -> Any:
        pubsub = self.client.redis.pubsub()
        try:
            await self.client.call(lambda _: pubsub.subscribe(CHANNEL))
        except PylottoError:
            await pubsub.aclose()
            raise
        self.listening.set()
        return pubsub

    async def _listen_loop(self, pubsub: Any) -> None:
        """Read notifications; reconnect (and catch subscriptions up) after a loss."""
        failures = 0
        while True:
            if pubsub is None:
                try:
                    pubsub = await self._connect()
                except PylottoError as exc:
                    delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                    failures += 1
                    self.context.logger.warning(
                        "configuration store %s: subscription connection: %s; retrying in "
                        "%.1fs", self.name, exc.message, delay)
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                await self._catch_up()
            try:
                await self._read(pubsub)
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except Exception as exc:  # lost: reconnect
                self.context.logger.warning(
                    "configuration store %s: subscription connection lost: %s", self.name, exc)
            self.listening.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            pubsub = None

    async def _read(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=self.client.timeout)
            if message is None:
                async with asyncio.timeout(self.client.timeout):
                    await pubsub.ping()  # a silent connection must still answer
                continue
            if message.get("type") == "message":
                self._dispatch(json.loads(message["data"]))

    def _dispatch(self, change: dict[str, Any]) -> None:
        app_id = change["app_id"]
        items = [ConfigurationItem(key=i["key"], content=i["content"], group=i["group"],
                                   label=i["label"], tags=dict(i.get("tags") or {}),
                                   metadata=dict(i.get("metadata") or {}))
                 for i in change["items"]]
        for subscription in list(self._subscriptions):
            matched = [item for item in items if subscription.query.matches(app_id, item)]
            if matched:
                subscription.deliver(matched)

    async def _catch_up(self) -> None:
        for subscription in list(self._subscriptions):
            try:
                await subscription.catch_up()
            except PylottoError as exc:
                self.context.logger.warning(
                    "configuration store %s: catching a subscription up failed: %s",
                    self.name, exc.message)
