"""``in-memory``: configuration items in the sidecar's memory (one process; lost on restart).

No metadata. Default group and label: ``default``. Changes reach subscribers synchronously,
inside the write that makes them, so they arrive in the order they were made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pylotto.components.base import ComponentContext
from pylotto.components.configuration.base import (
    ALL_FEATURES,
    ChangeHandler,
    ConfigurationItem,
    ConfigurationStore,
    ItemsQuery,
    Subscribers,
    Subscription,
)
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata

_Address = tuple[str, str, str, str]
"""(app id, group, label, key)."""

log = logging.getLogger("pylotto.configuration.memory")


class MemoryConfigurationStore(ConfigurationStore):
    features = ALL_FEATURES
    per_process = True
    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self._items: dict[_Address, ConfigurationItem] = {}
        self._subscribers = Subscribers(name, log)

    async def close(self) -> None:
        self._subscribers.clear()

    async def get(self, query: ItemsQuery) -> list[ConfigurationItem]:
        if query.keys:
            found = (self._items.get((query.app_id, query.group, query.label, key))
                     for key in query.keys)
            return [item for item in found if item is not None]
        return sorted(
            (item for (app_id, _, _, _), item in self._items.items()
             if query.matches(app_id, item)),
            key=lambda item: item.key,
        )

    async def set(self, app_id: str, items: Sequence[ConfigurationItem],
                  metadata: Metadata) -> None:
        for item in items:
            self._items[(app_id, item.group, item.label, item.key)] = item
        self._subscribers.notify(app_id, items)

    async def delete(self, query: ItemsQuery) -> None:
        deleted = []
        for key in query.keys:
            item = self._items.pop((query.app_id, query.group, query.label, key), None)
            if item is not None:
                deleted.append(ConfigurationItem(item.key, "", item.group, item.label))
        self._subscribers.notify(query.app_id, deleted)

    async def subscribe(self, query: ItemsQuery, handler: ChangeHandler) -> Subscription:
        return self._subscribers.add(query, handler)

