"""``etcd``: configuration items on etcd, with subscriptions through etcd watches.

Metadata: ``endpoints``, ``username``, ``password``, ``keyPrefixPath`` (default ``pylotto``),
``timeout`` (see :mod:`pylotto.components._backends.etcd_client`).

Layout: one etcd key per item, ``<keyPrefixPath>/config/<app>/<group>/<label>/<key>`` (each
part percent-encoded), holding ``{"content", "tags", "metadata"}`` as JSON. A save or delete is
one etcd transaction (one revision). A subscription is an etcd watch on its (app, group,
label) prefix starting right after the revision it read: changes arrive in revision order, the
items of one transaction together, a delete as an item with empty content. After a lost
connection the watch resumes from the last revision it saw, so no change is missed (if etcd
compacted that history meanwhile, the subscription catches up from the current items).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote, unquote

from pylotto.components._backends.etcd_client import EtcdClient, EtcdSettings, map_error, prefix_end
from pylotto.components.base import ComponentContext
from pylotto.components.configuration.base import (
    ALL_FEATURES,
    ChangeFeed,
    ChangeHandler,
    ConfigurationItem,
    ConfigurationStore,
    ItemsQuery,
    Subscription,
)
from pylotto.core.types import Metadata


class EtcdConfigurationSettings(EtcdSettings):
    pass


def _part(text: str) -> str:
    return quote(text, safe="")


class _EtcdSubscription(ChangeFeed, Subscription):
    """One etcd watch per subscription, resumed from the last revision it saw (so a resumed
    watch needs no catch-up, unless that revision was compacted away)."""

    store: EtcdConfigurationStore

    def __init__(self, store: EtcdConfigurationStore, query: ItemsQuery,
                 handler: ChangeHandler, revision: int,
                 known: dict[str, ConfigurationItem]) -> None:
        super().__init__(store, "watch")
        self.query = query
        self.handler = handler
        self.revision = revision
        """The last revision this subscription has seen."""
        self.known = known
        self.start()

    async def close(self) -> None:
        await self.stop()

    def describe(self, error: Exception) -> str:
        return (f"{map_error(error, self.store.client.what).message}; resuming from revision "
                f"{self.revision + 1}")

    def _deliver(self, items: list[ConfigurationItem]) -> None:
        items = [i for i in items if not self.query.keys or i.key in self.query.keys]
        for item in items:
            if item.content:
                self.known[item.key] = item
            else:
                self.known.pop(item.key, None)
        if not items:
            return
        try:
            self.handler(items)
        except Exception:
            self.store.context.logger.exception(
                "configuration store %s: a subscriber's handler failed", self.store.name)

    async def watch(self, resuming: bool) -> None:
        while True:
            try:
                async for revision, items in self.store.watch(self.query, self.revision + 1):
                    self.caught_up()
                    self.revision = revision
                    self._deliver(items)
            except _Compacted:
                await self._catch_up()

    async def _catch_up(self) -> None:
        revision, items = await self.store.read(self.query)
        current = {item.key: item for item in items}
        changed = [i for k, i in current.items() if self.known.get(k) != i]
        gone = [ConfigurationItem(k, "", self.query.group, self.query.label)
                for k in self.known if k not in current]
        self.revision = revision
        self._deliver(changed + gone)


class _Compacted(Exception):
    """The revision a watch wanted to resume from was compacted away."""


class EtcdConfigurationStore(ConfigurationStore):
    features = ALL_FEATURES
    Settings = EtcdConfigurationSettings
    settings: EtcdConfigurationSettings

    def __init__(self, name: str, settings: EtcdConfigurationSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = EtcdClient(settings, f"configuration store {name}")
        self._subscriptions: set[_EtcdSubscription] = set()

    async def init(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.close()
        self._subscriptions.clear()
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    def _prefix(self, app_id: str, group: str, label: str) -> bytes:
        return self.client.root + f"config/{_part(app_id)}/{_part(group)}/{_part(label)}/".encode()

    def _decode(self, query: ItemsQuery, kv: Any, prefix: bytes) -> ConfigurationItem:
        key = unquote(bytes(kv.key)[len(prefix):].decode())
        if not kv.value:
            return ConfigurationItem(key, "", query.group, query.label)
        body = json.loads(kv.value)
        return ConfigurationItem(key=key, content=body.get("content", ""), group=query.group,
                                 label=query.label, tags=dict(body.get("tags") or {}),
                                 metadata=dict(body.get("metadata") or {}))

    async def read(self, query: ItemsQuery) -> tuple[int, list[ConfigurationItem]]:
        """The revision read at, and every item of the query's app, group and label."""
        prefix = self._prefix(query.app_id, query.group, query.label)
        reply = await self.client.range(prefix, prefix_end(prefix))
        return int(reply.header.revision), [self._decode(query, kv, prefix) for kv in reply.kvs]

    async def get(self, query: ItemsQuery) -> list[ConfigurationItem]:
        _, items = await self.read(query)
        if not query.keys:
            return sorted(items, key=lambda item: item.key)
        found = {item.key: item for item in items}
        return [found[k] for k in dict.fromkeys(query.keys) if k in found]

    async def set(self, app_id: str, items: Sequence[ConfigurationItem],
                  metadata: Metadata) -> None:
        puts = [self.client.put(
            self._prefix(app_id, item.group, item.label) + _part(item.key).encode(),
            json.dumps({"content": item.content, "tags": item.tags,
                        "metadata": item.metadata}).encode()) for item in items]
        if puts:
            await self.client.txn([], puts)

    async def delete(self, query: ItemsQuery) -> None:
        prefix = self._prefix(query.app_id, query.group, query.label)
        deletes = [self.client.delete(prefix + _part(k).encode())
                   for k in dict.fromkeys(query.keys)]
        if deletes:
            await self.client.txn([], deletes)

    async def subscribe(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        revision, items = await self.read(query)  # fails now if etcd is down
        subscription = _EtcdSubscription(self, query, handler, revision,
                                         {item.key: item for item in items})
        self._subscriptions.add(subscription)
        return subscription

    async def watch(self, query: ItemsQuery,
                    start: int) -> AsyncIterator[tuple[int, list[ConfigurationItem]]]:
        """(revision, items changed in it) from ``start`` on, until the stream fails."""
        rpc = self.client.rpc
        prefix = self._prefix(query.app_id, query.group, query.label)
        create = rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=prefix, range_end=prefix_end(prefix), start_revision=start))
        requests: asyncio.Queue[Any] = asyncio.Queue()
        requests.put_nowait(create)

        async def outgoing() -> AsyncIterator[Any]:
            while True:
                yield await requests.get()

        call = self.client.watch.Watch(outgoing(), metadata=self.client.metadata)
        try:
            async for response in call:
                if response.compact_revision:
                    raise _Compacted()
                if response.canceled:
                    raise ConnectionError(f"watch canceled: {response.cancel_reason}")
                by_revision: dict[int, list[ConfigurationItem]] = {}
                for event in response.events:
                    item = self._decode(query, event.kv, prefix)
                    if event.type == rpc.Event.DELETE:
                        item = ConfigurationItem(item.key, "", query.group, query.label)
                    by_revision.setdefault(int(event.kv.mod_revision), []).append(item)
                for revision in sorted(by_revision):
                    yield revision, by_revision[revision]
            raise ConnectionError("watch stream ended")
        finally:
            call.cancel()


