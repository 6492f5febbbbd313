"""Configuration: get, save, delete and subscribe to the items of a named configuration store.

Rules shared by every facade: the store lookup (none configured → NotConfigured, empty name →
InvalidArgument, unknown → ComponentNotFound); an empty ``app_id`` means the sidecar's own; a
blank group or label (empty or spaces only) means the store's default (``default`` for the
embedded store); item keys may not be empty. As the Layotto proto says, saving an item with
empty content deletes it, and subscribers see a deleted item with empty content.

A :class:`ConfigurationStream` is one client's subscription stream: each request adds a
subscription, every change any of them covers is queued in order, and closing the stream
closes its own subscriptions only (Layotto's ``StopSubscribe`` ended every subscriber of a
store, other clients' included).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Unpack

from pylotto.capabilities.base import Capability, ComponentSet, Policies, RuntimeContext
from pylotto.components.configuration.base import (
    ConfigurationItem,
    ConfigurationStore,
    ItemsQuery,
    Subscription,
)
from pylotto.core.dapr_errors import fields_of
from pylotto.core.errors import InvalidArgument, PylottoError, Unavailable

log = logging.getLogger("pylotto.configuration")

MAX_PENDING_UPDATES = 1000
"""Updates a stream may hold for a client that does not read; beyond, the stream fails."""


@dataclass(frozen=True, slots=True)
class ConfigurationUpdate:
    """One change pushed to a subscriber: the items of ``app_id`` it touched."""

    store_name: str
    app_id: str
    items: tuple[ConfigurationItem, ...]


@dataclass(frozen=True, slots=True)
class _End:
    error: PylottoError | None = None


class ConfigurationStream:
    """The subscriptions of one client stream and the queue of their updates."""

    def __init__(self, capability: ConfigurationCapability) -> None:
        self._capability = capability
        self._queue: asyncio.Queue[ConfigurationUpdate | _End] = asyncio.Queue()
        self._subscriptions: list[Subscription] = []
        self.stores: set[str] = set()
        """The stores this stream subscribed to."""
        self._pending = 0
        self.closed = False

    async def subscribe(
        self,
        store_name: str,
        app_id: str = "",
        group: str = "",
        label: str = "",
        keys: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Add a subscription to the items of ``keys`` (every key of the group when empty)."""
        store, query = self._capability._query(store_name, app_id, group, label, keys, metadata)

        def handler(items: Sequence[ConfigurationItem]) -> None:
            self._push(ConfigurationUpdate(store_name, query.app_id, tuple(items)))

        try:
            subscription = await store.subscribe(query, handler)
        except PylottoError as err:
            raise type(err)(
                f"failed to subscribe to configuration store {store_name}: {err.message}",
                where="configuration.subscribe", store=store_name, detail=err.message,
                **fields_of({"keys": list(keys)}),
            ) from err
        if self.closed:
            await subscription.close()
            return
        self._subscriptions.append(subscription)
        self.stores.add(store_name)
        log.debug("stream subscribed to %s %s/%s/%s keys=%s", store_name, query.app_id,
                  query.group, query.label, list(query.keys) or "*")

    def _push(self, update: ConfigurationUpdate) -> None:
        if self.closed:
            return
        if self._pending >= MAX_PENDING_UPDATES:
            self._end(Unavailable(
                f"configuration subscriber fell behind: {self._pending} updates not read"
            ))
            return
        self._pending += 1
        self._queue.put_nowait(update)

    def _end(self, error: PylottoError | None) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_End(error))

    async def fail(self, error: PylottoError) -> None:
        """End the stream with ``error`` (after the updates already queued)."""
        self._end(error)
        await self._close_subscriptions()

    async def close(self) -> None:
        """End the stream normally and close its subscriptions (idempotent)."""
        self._end(None)
        await self._close_subscriptions()
        self._capability._streams.discard(self)

    async def _close_subscriptions(self) -> None:
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            try:
                await subscription.close()
            except PylottoError as err:
                log.warning("closing a configuration subscription failed: %s", err.message)

    async def __aiter__(self) -> AsyncIterator[ConfigurationUpdate]:
        """The updates in order, until the stream is closed; a failure raises its error."""
        while True:
            entry = await self._queue.get()
            if isinstance(entry, _End):
                if entry.error is not None:
                    raise entry.error
                return
            self._pending -= 1
            yield entry


class ConfigurationCapability(Capability[ConfigurationStore]):
    """The configuration API over the configured configuration stores."""

    def __init__(
        self, components: ComponentSet[ConfigurationStore], context: RuntimeContext,
        **policies: Unpack[Policies],
    ) -> None:
        super().__init__(components, context, **policies)
        self._streams: set[ConfigurationStream] = set()

    async def detach(self, component_name: str) -> None:
        """Hot reload: streams subscribed to store ``component_name`` end with Unavailable
        (after the updates already queued); their clients subscribe again."""
        for stream in [s for s in list(self._streams) if component_name in s.stores]:
            await stream.fail(Unavailable(
                f"configuration store {component_name} was reloaded: subscribe again"))

    def _query(
        self,
        store_name: str,
        app_id: str,
        group: str,
        label: str,
        keys: Sequence[str],
        metadata: Mapping[str, str] | None,
    ) -> tuple[ConfigurationStore, ItemsQuery]:
        store = self.components.get(store_name)
        for key in keys:
            _check_key(key)
        query = ItemsQuery(
            app_id=app_id or self.context.app_id,
            group=group if group.strip() else store.default_group,
            label=label if label.strip() else store.default_label,
            keys=tuple(keys),
            metadata=dict(metadata or {}),
        )
        return store, query

    async def get_configuration(
        self,
        store_name: str,
        app_id: str = "",
        group: str = "",
        label: str = "",
        keys: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> list[ConfigurationItem]:
        """The items of ``keys`` that exist; every item of the app, group and label if none."""
        store, query = self._query(store_name, app_id, group, label, keys, metadata)
        try:
            return await self.call(store_name, lambda: store.get(query), "get")
        except PylottoError as err:
            raise type(err)(f"get configuration failed with error: {err.message}",
                            where="configuration.get", store=store_name, detail=err.message,
                            **fields_of({"keys": list(keys)})) from err

    async def save_configuration(
        self,
        store_name: str,
        app_id: str,
        items: Sequence[ConfigurationItem],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Create or replace ``items``; an item with empty content is deleted."""
        store = self.components.get(store_name)
        if not items:
            raise InvalidArgument(f"no configuration items to save in {store_name}")
        app_id = app_id or self.context.app_id
        normalised = []
        for item in items:
            _check_key(item.key)
            normalised.append(ConfigurationItem(
                key=item.key,
                content=item.content,
                group=item.group if item.group.strip() else store.default_group,
                label=item.label if item.label.strip() else store.default_label,
                tags=dict(item.tags),
                metadata=dict(item.metadata),
                version=item.version,
            ))
        try:
            for is_delete, run in _runs(normalised):
                if is_delete:
                    for (group, label), keys in _by_group(run).items():
                        query = ItemsQuery(app_id, group, label, tuple(keys),
                                           dict(metadata or {}))
                        await self.call(store_name, partial(store.delete, query), "delete")
                else:
                    await self.call(store_name, partial(
                        store.set, app_id, run, dict(metadata or {})), "set")
        except PylottoError as err:
            raise type(err)(f"save configuration failed with error: {err.message}") from err

    async def delete_configuration(
        self,
        store_name: str,
        app_id: str = "",
        group: str = "",
        label: str = "",
        keys: Sequence[str] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        """Delete the items of ``keys``; absent keys are ignored, no keys deletes nothing."""
        store, query = self._query(store_name, app_id, group, label, keys, metadata)
        if not query.keys:
            return
        try:
            await self.call(store_name, lambda: store.delete(query), "delete")
        except PylottoError as err:
            raise type(err)(f"delete configuration failed with error: {err.message}") from err

    def open_stream(self) -> ConfigurationStream:
        """A new, empty subscription stream; the caller closes it."""
        stream = ConfigurationStream(self)
        self._streams.add(stream)
        return stream

    async def stop(self) -> None:
        """End every open stream normally."""
        for stream in list(self._streams):
            await stream.close()


def _check_key(key: str) -> None:
    if not key:
        raise InvalidArgument("configuration item key is empty")


def _runs(items: list[ConfigurationItem]) -> list[tuple[bool, list[ConfigurationItem]]]:
    """Consecutive saves and deletes (empty content), in request order."""
    runs: list[tuple[bool, list[ConfigurationItem]]] = []
    for item in items:
        is_delete = item.content == ""
        if runs and runs[-1][0] == is_delete:
            runs[-1][1].append(item)
        else:
            runs.append((is_delete, [item]))
    return runs


def _by_group(items: list[ConfigurationItem]) -> dict[tuple[str, str], list[str]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for item in items:
        grouped.setdefault((item.group, item.label), []).append(item.key)
    return grouped
