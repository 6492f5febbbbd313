"""Configuration store contract.

An item is addressed by (app id, group, label, key) and carries a string ``content`` plus
``tags`` and ``metadata`` maps. Requests reach a store with the app id, group and label already
filled in (the capability puts the store's defaults in for blanks); keys are never empty.

``subscribe`` registers a handler called with the changed items — in the order the store
applied the changes — until the returned :class:`Subscription` is closed. A deleted item is
reported with an empty ``content``. Handlers must not block: they only queue the change.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pylotto.components.base import Component
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata

DEFAULT_GROUP = "default"
DEFAULT_LABEL = "default"


@dataclass(frozen=True, slots=True)
class ConfigurationItem:
    key: str
    content: str = ""
    group: str = ""
    label: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


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
