"""Secrets: GetSecret / GetBulkSecret against a named secret store."""

from __future__ import annotations

from collections.abc import Mapping

from pylotto.capabilities.base import Capability
from pylotto.components.secretstores.base import Secret, SecretStore
from pylotto.core.errors import InvalidArgument, PylottoError


class SecretsCapability(Capability[SecretStore]):
    """No store configured: NotConfigured; unknown store: ComponentNotFound; empty key:
    InvalidArgument; missing secret: NotFound (raised by the store)."""

    async def get_secret(self, store_name: str, key: str, metadata: Mapping[str, str]) -> Secret:
        store = self.components.get(store_name)
        if not key:
            raise InvalidArgument(f"secret key is empty (secret store {store_name})")
        try:
            return await self.call(store_name, lambda: store.get_secret(key, dict(metadata)))
        except PylottoError as err:
            raise err.at("secretstores.get", key=key, store=store_name) from None

    async def get_bulk_secret(
        self, store_name: str, metadata: Mapping[str, str]
    ) -> dict[str, Secret]:
        store = self.components.get(store_name)
        try:
            return await self.call(store_name, lambda: store.bulk_get_secret(dict(metadata)))
        except PylottoError as err:
            raise err.at("secretstores.bulk_get", store=store_name) from None
