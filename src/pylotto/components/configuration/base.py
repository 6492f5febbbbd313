"""Configuration store contract.

An item is addressed by (app id, group, label, key) and carries a string ``content`` plus
``tags`` and ``metadata`` maps. Requests reach a store with the app id, group and label already
filled in (the capability puts the store's defaults in for blanks); keys are never empty.

``subscribe`` registers a handler called with the changed items — in the order the store
applied the changes — until the returned :class:`Subscription` is closed. A deleted item is
reported with an empty ``content``. Handlers must not block: they only queue the change.

A store whose changes come from its server keeps that feed open with a :class:`ChangeFeed`:
the reconnect loop is written here once; the store writes the watch step.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pylotto.components.backoff import Backoff
from pylotto.components.base import Component, cancel_requested
from pylotto.core.errors import PylottoError
from pylotto.core.metadata import ComponentSettings
from pylotto.core.tasks import stop_task
from pylotto.core.types import Metadata

DEFAULT_GROUP = "default"
DEFAULT_LABEL = "default"


class Feature(enum.StrEnum):
    """What a store can do beyond keys and values (Dapr's ``configuration.redis`` does none)."""

    GROUPS = "GROUPS"
    """Group, label and app id keep items apart (Layotto's addressing); without it a group or
    label other than the default is refused (Unsupported) and the app id is ignored."""
    TAGS = "TAGS"
    """Items keep ``tags`` and ``metadata``; without it saving either is refused."""
    EVERY_CHANGE = "EVERY_CHANGE"
    """Subscribers get every change, in order, each with its own value; without it (a
    notification that only names the key) they get the key's value when they read it: the
    last value always arrives, an intermediate one may be skipped or reported twice."""


ALL_FEATURES = frozenset(Feature)


@dataclass(frozen=True, slots=True)
class ConfigurationItem:
    key: str
    content: str = ""
    group: str = ""
    label: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    version: str = ""
    """The item's version where the store keeps one (Dapr's ``version``)."""


@dataclass(frozen=True, slots=True)
class ItemsQuery:
    """The items of one app, group and label: ``keys``, or every key when empty."""

    app_id: str
    group: str
    label: str
    keys: tuple[str, ...] = ()
    metadata: Metadata = field(default_factory=dict)

    def matches(self, app_id: str, item: ConfigurationItem) -> bool:
        return (
            app_id == self.app_id
            and item.group == self.group
            and item.label == self.label
            and (not self.keys or item.key in self.keys)
        )


ChangeHandler = Callable[[Sequence[ConfigurationItem]], None]
"""Called with the items one change touched that a subscription covers (never empty)."""


class Subscription(abc.ABC):
    @abc.abstractmethod
    async def close(self) -> None:
        """Stop calling the handler; closing twice is harmless."""


class Subscribers:
    """The subscriptions of a store that learns of each change as a whole (its own writes, a
    LISTEN notification): :meth:`notify` hands each subscriber the items its query covers."""

    def __init__(self, store: str, logger: logging.Logger) -> None:
        self._store = store
        self._log = logger
        self._all: set[_Subscriber] = set()

    def add(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        subscriber = _Subscriber(self._all, query, handler)
        self._all.add(subscriber)
        return subscriber

    def clear(self) -> None:
        self._all.clear()

    def notify(self, app_id: str, items: Sequence[ConfigurationItem]) -> None:
        """Call every handler whose query covers some of ``items`` (changed in one write);
        a handler that fails is logged and does not stop the others."""
        for subscriber in list(self._all):
            matched = [item for item in items if subscriber.query.matches(app_id, item)]
            if not matched:
                continue
            try:
                subscriber.handler(matched)
            except Exception:
                self._log.exception("configuration store %s: a subscriber's handler failed",
                                    self._store)


class _Subscriber(Subscription):
    def __init__(self, registry: set[_Subscriber], query: ItemsQuery,
                 handler: ChangeHandler) -> None:
        self._registry = registry
        self.query = query
        self.handler = handler

    async def close(self) -> None:
        self._registry.discard(self)


class ConfigurationStore(Component):
    Settings: ClassVar[type[ComponentSettings]] = ComponentSettings

    @property
    def default_group(self) -> str:
        """The group of a request that gives none."""
        return DEFAULT_GROUP

    @property
    def default_label(self) -> str:
        """The label of a request that gives none."""
        return DEFAULT_LABEL

    @abc.abstractmethod
    async def get(self, query: ItemsQuery) -> list[ConfigurationItem]:
        """The items that exist, in the order of ``query.keys`` (by key when keys is empty)."""

    @abc.abstractmethod
    async def set(self, app_id: str, items: Sequence[ConfigurationItem],
                  metadata: Metadata) -> None:
        """Create or replace ``items`` (each with its own group and label)."""

    @abc.abstractmethod
    async def delete(self, query: ItemsQuery) -> None:
        """Delete the items ``query.keys`` (never empty) names; absent keys are ignored."""

    @abc.abstractmethod
    async def subscribe(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        """Call ``handler`` for every later change of an item ``query`` covers."""


class ChangeFeed(abc.ABC):
    """A store's change feed (a LISTEN connection, a pub/sub connection, a watch stream), kept
    open by one loop: :meth:`watch` until the feed fails; then wait per :class:`Backoff` and
    watch again, told it is resuming, so that it first catches up with what changed while it
    was down. The back-off starts over once a watch reports :meth:`caught_up`."""

    def __init__(self, store: ConfigurationStore, feed: str) -> None:
        self.store = store
        self.feed = feed
        """What is watched, for the log: ``"listening connection"``."""
        self.backoff = Backoff()
        self.task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def watch(self, resuming: bool) -> None:
        """Open the feed (``resuming``: again, after a failure — catch up first), call
        :meth:`caught_up`, then hand changes to subscribers until the feed fails: raise.
        Return only when nobody needs the feed any more (the loop ends)."""

    def caught_up(self) -> None:
        """The feed is up and subscribers are up to date."""
        self.backoff.succeeded()

    def describe(self, error: Exception) -> str:
        """How a failure reads in the log."""
        return error.message if isinstance(error, PylottoError) else str(error) or repr(error)

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name=f"configuration:{self.store.name}")

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def stop(self) -> None:
        task, self.task = self.task, None
        await stop_task(task)

    async def run(self) -> None:
        resuming = False
        while True:
            try:
                await self.watch(resuming)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if cancel_requested():  # a driver turned our cancellation into an error
                    raise asyncio.CancelledError from exc
                delay = self.backoff.failed()
                self.store.context.logger.warning(
                    "configuration store %s: %s lost (%s); reconnecting in %.1fs",
                    self.store.name, self.feed, self.describe(exc), delay)
                await asyncio.sleep(delay)
            resuming = True
