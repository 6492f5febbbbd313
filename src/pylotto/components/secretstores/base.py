"""Secret store contract: read one secret (a string map) or all of them."""

from __future__ import annotations

import abc

from pylotto.components.base import Component
from pylotto.core.types import Metadata

Secret = dict[str, str]
"""One secret: usually ``{name: value}``; multi-valued stores return several keys."""


class SecretStore(Component):
    """Read-only secrets. A missing secret raises :class:`pylotto.core.errors.NotFound`."""

    @property
    def multiple_values_per_secret(self) -> bool:
        """One secret may hold several keys (Dapr's ``MULTIPLE_KEY_VALUES_PER_SECRET``)."""
        return False

    @abc.abstractmethod
    async def get_secret(self, key: str, metadata: Metadata) -> Secret:
        """The secret named ``key``."""

    @abc.abstractmethod
    async def bulk_get_secret(self, metadata: Metadata) -> dict[str, Secret]:
        """Every secret the store holds, by name."""
