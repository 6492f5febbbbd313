"""Secret scopes (Dapr's ``spec.secrets.scopes``): which secrets of a store the app may read.

    secret_scopes:                       # pylotto.yaml; a Dapr Configuration's spec.secrets.scopes
    - storeName: vault
      defaultAccess: deny                # allow (default) or deny
      allowedSecrets: [db-password]      # when given: only these, whatever defaultAccess says
      deniedSecrets: [root-key]          # else these are refused, the rest follows defaultAccess

A store no scope names is open. GetSecret of a refused key answers PermissionDenied with
Dapr's message (``access denied by policy to get "<key>" from "<store>"``); GetBulkSecret
leaves refused keys out of its answer, as Dapr does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pylotto.core.errors import ConfigError, PermissionDenied


class SecretScope(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    store_name: str = Field(alias="storeName")
    default_access: Literal["allow", "deny"] = Field("allow", alias="defaultAccess")
    allowed_secrets: list[str] = Field(default_factory=list, alias="allowedSecrets")
    denied_secrets: list[str] = Field(default_factory=list, alias="deniedSecrets")

    @field_validator("default_access", mode="before")
    @classmethod
    def _lowered(cls, value: object) -> object:
        """Dapr compares ``defaultAccess`` case-insensitively ("" is allow)."""
        if isinstance(value, str):
            return value.lower() or "allow"
        return value

    def allows(self, key: str) -> bool:
        if self.allowed_secrets:
            return key in self.allowed_secrets
        if key in self.denied_secrets:
            return False
        return self.default_access == "allow"


class SecretScopes:
    """The scopes of every store, checked by the secrets capability."""

    def __init__(self, scopes: Iterable[SecretScope] = ()) -> None:
        self._by_store: dict[str, SecretScope] = {}
        for scope in scopes:
            if scope.store_name in self._by_store:
                raise ConfigError(f"{scope.store_name} storeName is repeated in secrets "
                                  "configuration")
            self._by_store[scope.store_name] = scope

    def allows(self, store: str, key: str) -> bool:
        scope = self._by_store.get(store)
        return scope is None or scope.allows(key)

    def check(self, store: str, key: str) -> None:
        """PermissionDenied when the scope of ``store`` refuses ``key``."""
        if not self.allows(store, key):
            raise PermissionDenied(
                f"access denied by policy to get {json.dumps(key)} from {json.dumps(store)}",
                where="secretstores.scope", key=key, store=store)
