"""Secrets: GetSecret / GetBulkSecret against a named secret store, within the app's secret
scopes (:mod:`pylotto.security.secret_scopes`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack

from pylotto.capabilities.base import Capability, ComponentSet, Policies, RuntimeContext
from pylotto.components.secretstores.base import Secret, SecretStore
from pylotto.core.errors import InvalidArgument, PylottoError
from pylotto.security.secret_scopes import SecretScopes


class SecretsCapability(Capability[SecretStore]):
    """No store configured: NotConfigured; unknown store: ComponentNotFound; a key the
    store's scope refuses: PermissionDenied; empty key: InvalidArgument; missing secret:
    NotFound (raised by the store)."""

    def __init__(self, components: ComponentSet[SecretStore], context: RuntimeContext, *,
                 scopes: SecretScopes | None = None, **policies: Unpack[Policies]) -> None:
        super().__init__(components, context, **policies)
        self.scopes = scopes or SecretScopes()

    async def get_secret(self, store_name: str, key: str, metadata: Mapping[str, str]) -> Secret:
        store = self.components.get(store_name)
        self.scopes.check(store_name, key)
        if not key:
            raise InvalidArgument(f"secret key is empty (secret store {store_name})")
        try:
            return await self.call(store_name, lambda: store.get_secret(key, dict(metadata)),
                                   "get")
        except PylottoError as err:
            raise err.at("secretstores.get", key=key, store=store_name) from None

    async def get_bulk_secret(
        self, store_name: str, metadata: Mapping[str, str]
    ) -> dict[str, Secret]:
        """Every secret of the store the scope allows (refused ones are left out)."""
        store = self.components.get(store_name)
        try:
            found = await self.call(store_name, lambda: store.bulk_get_secret(dict(metadata)),
                                    "bulk_get")
        except PylottoError as err:
            raise err.at("secretstores.bulk_get", store=store_name) from None
        return {key: secret for key, secret in found.items()
                if self.scopes.allows(store_name, key)}
