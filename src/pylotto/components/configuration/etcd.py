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

``layout: layotto`` (what a Layotto config's ``type: etcd`` config store gets): Layotto's own
keys (components/configstores/etcdv3 at f9681450), so that data written by either runtime is
read by the other: ``/<app>/<group>/<label>/<key>`` holding the content as it is, and one key
per tag under it, ``/<app>/<group>/<label>/<key>/<tag>``, holding the content too. Layotto
names a tag key by the tag's value and reads it back as a tag named by that value; pylotto
names it ``<name>=<value>`` (each percent-encoded) and reads such a key back as the tag it
wrote, a key without ``=`` as Layotto does. Metadata is not kept (Layotto keeps none), and a
part containing ``/`` is refused (Layotto would split it). ``keyPrefixPath`` is not used.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Literal
from urllib.parse import quote, unquote

from pydantic import Field

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
from pylotto.core.errors import InvalidArgument
from pylotto.core.types import Metadata
from pylotto.proto.etcd import kv_pb2, rpc_pb2

ANY = "*"
"""Layotto's group, label or key that matches any (in the ``layotto`` layout)."""


class EtcdConfigurationSettings(EtcdSettings):
    layout: Literal["pylotto", "layotto"] = Field("pylotto", alias="layout")


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
        self.layotto = settings.layout == "layotto"
        self._subscriptions: set[_EtcdSubscription] = set()
        self._metadata_warned = False

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
        if self.layotto:
            return f"/{_raw(app_id, 'app id')}/{_raw(group, 'group')}/{_raw(label, 'label')}/" \
                .encode()
        return self.client.root + f"config/{_part(app_id)}/{_part(group)}/{_part(label)}/".encode()

    def _item_key(self, prefix: bytes, key: str) -> bytes:
        return prefix + (_raw(key, "key") if self.layotto else _part(key)).encode()

    def _decode(self, query: ItemsQuery, kv: kv_pb2.KeyValue, prefix: bytes) -> ConfigurationItem:
        key = unquote(bytes(kv.key)[len(prefix):].decode())
        if not kv.value:
            return ConfigurationItem(key, "", query.group, query.label)
        body = json.loads(kv.value)
        return ConfigurationItem(key=key, content=body.get("content", ""), group=query.group,
                                 label=query.label, tags=dict(body.get("tags") or {}),
                                 metadata=dict(body.get("metadata") or {}))

    def _decode_layotto(self, query: ItemsQuery, kvs: Sequence[kv_pb2.KeyValue],
                        deleted: Sequence[bool] = ()) -> list[ConfigurationItem]:
        """The items among ``kvs`` (Layotto's keys, in key order or one revision's events)
        that ``query`` covers — its group, label and keys, ``*`` matching any as in Layotto —
        each with the tags its tag keys among ``kvs`` give. A tag key without its item is left
        out (Layotto's watch reports only the items); ``deleted``: which kvs are deletions
        (reported with an empty content)."""
        root = f"/{_raw(query.app_id, 'app id')}/".encode()
        items: dict[tuple[str, str, str], str] = {}
        tags: dict[tuple[str, str, str], dict[str, str]] = {}
        for index, kv in enumerate(kvs):
            parts = bytes(kv.key)[len(root):].decode(errors="replace").split("/")
            if len(parts) not in (3, 4) or not _covers(query, parts[0], parts[1], parts[2]):
                continue
            address = (parts[0], parts[1], parts[2])
            gone = index < len(deleted) and deleted[index]
            value = "" if gone else bytes(kv.value).decode(errors="replace")
            if len(parts) == 3:
                items[address] = value
            elif not gone:
                name, sep, tag_value = parts[3].partition("=")
                if sep:  # pylotto's: name=value
                    tags.setdefault(address, {})[unquote(name)] = unquote(tag_value)
                else:  # Layotto's: named by the value, holding the content
                    tags.setdefault(address, {})[parts[3]] = value
        return [ConfigurationItem(key=key, content=content, group=group, label=label,
                                  tags=dict(tags.get((group, label, key), {})) if content else {})
                for (group, label, key), content in items.items()]

    def _range_of(self, query: ItemsQuery) -> bytes:
        """Where ``query``'s items are: under its app alone when it asks for any group or
        label (Layotto's ``*``)."""
        if self.layotto and ANY in (query.group, query.label):
            return f"/{_raw(query.app_id, 'app id')}/".encode()
        return self._prefix(query.app_id, query.group, query.label)

    async def read(self, query: ItemsQuery) -> tuple[int, list[ConfigurationItem]]:
        """The revision read at, and every item of the query's app, group and label."""
        prefix = self._range_of(query)
        reply = await self.client.range(prefix, prefix_end(prefix))
        if self.layotto:
            return int(reply.header.revision), self._decode_layotto(
                replace(query, keys=()), reply.kvs)
        return int(reply.header.revision), [self._decode(query, kv, prefix) for kv in reply.kvs]

    async def get(self, query: ItemsQuery) -> list[ConfigurationItem]:
        _, items = await self.read(query)
        if not query.keys or (self.layotto and ANY in query.keys):
            return sorted(items, key=lambda item: (item.group, item.label, item.key))
        found: dict[str, list[ConfigurationItem]] = {}
        for item in items:
            found.setdefault(item.key, []).append(item)
        return [item for k in dict.fromkeys(query.keys) for item in found.get(k, [])]

    async def set(self, app_id: str, items: Sequence[ConfigurationItem],
                  metadata: Metadata) -> None:
        if self.layotto:
            await self._set_layotto(app_id, items)
            return
        puts = [self.client.put(
            self._item_key(self._prefix(app_id, item.group, item.label), item.key),
            json.dumps({"content": item.content, "tags": item.tags,
                        "metadata": item.metadata}).encode()) for item in items]
        if puts:
            await self.client.txn([], puts)

    async def _set_layotto(self, app_id: str, items: Sequence[ConfigurationItem]) -> None:
        """Each item's key and its tag keys, and the tag keys it no longer has deleted, in one
        transaction."""
        puts: dict[bytes, bytes] = {}
        stale: set[bytes] = set()
        for item in items:
            key = self._item_key(self._prefix(app_id, item.group, item.label), item.key)
            content = item.content.encode()
            puts[key] = content
            for name, value in item.tags.items():
                puts[key + f"/{_part(name)}={_part(value)}".encode()] = content
            tag_root = key + b"/"
            existing = await self.client.range(tag_root, prefix_end(tag_root))
            stale.update(bytes(kv.key) for kv in existing.kvs
                         if b"/" not in bytes(kv.key)[len(tag_root):])
            if item.metadata and not self._metadata_warned:
                self._metadata_warned = True
                self.context.logger.warning(
                    "configuration store %s (layout layotto): item metadata is not kept "
                    "(Layotto's etcd layout has no place for it)", self.name)
        ops = [self.client.put(k, v) for k, v in puts.items()]
        ops += [self.client.delete(k) for k in stale - set(puts)]
        if ops:
            await self.client.txn([], ops)

    async def delete(self, query: ItemsQuery) -> None:
        prefix = self._prefix(query.app_id, query.group, query.label)
        deletes = []
        for k in dict.fromkeys(query.keys):
            key = self._item_key(prefix, k)
            deletes.append(self.client.delete(key))
            if self.layotto:  # and its tag keys
                deletes.append(self.client.delete(key + b"/", prefix_end(key + b"/")))
        if deletes:
            await self.client.txn([], deletes)

    async def subscribe(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        revision, items = await self.read(query)  # fails now if etcd is down
        subscription = _EtcdSubscription(self, query, handler, revision,
                                         {item.key: item for item in items})
        self._subscriptions.add(subscription)
        return subscription

    def _changes(self, query: ItemsQuery, events: Sequence[kv_pb2.Event],
                 prefix: bytes) -> list[ConfigurationItem]:
        """The items one revision's ``events`` changed (a delete: an empty content)."""
        delete = kv_pb2.Event.DELETE
        if self.layotto:
            return self._decode_layotto(replace(query, keys=()), [e.kv for e in events],
                                        [e.type == delete for e in events])
        items = []
        for event in events:
            item = self._decode(query, event.kv, prefix)
            if event.type == delete:
                item = ConfigurationItem(item.key, "", query.group, query.label)
            items.append(item)
        return items

    async def watch(self, query: ItemsQuery,
                    start: int) -> AsyncIterator[tuple[int, list[ConfigurationItem]]]:
        """(revision, items changed in it) from ``start`` on, until the stream fails (on
        whichever member of the cluster is up)."""
        prefix = self._range_of(query)
        create = rpc_pb2.WatchCreateRequest(key=prefix, range_end=prefix_end(prefix),
                                            start_revision=start)
        async for response in self.client.watch(create):
            if response.compact_revision:
                raise _Compacted()
            if response.canceled:
                raise ConnectionError(f"watch canceled: {response.cancel_reason}")
            by_revision: dict[int, list[kv_pb2.Event]] = {}
            for event in response.events:
                by_revision.setdefault(int(event.kv.mod_revision), []).append(event)
            for revision in sorted(by_revision):
                changed = self._changes(query, by_revision[revision], prefix)
                if changed:
                    yield revision, changed
        raise ConnectionError("watch stream ended")


def _covers(query: ItemsQuery, group: str, label: str, key: str) -> bool:
    return ((query.group in (ANY, group)) and (query.label in (ANY, label))
            and (not query.keys or ANY in query.keys or key in query.keys))


def _raw(part: str, what: str) -> str:
    """A part of a key in Layotto's layout, which splits keys at ``/``."""
    if "/" in part:
        raise InvalidArgument(f"configuration {what} {part!r} can't contain '/' in Layotto's "
                              "etcd layout")
    return part
