"""``local.env``: secrets from the sidecar's environment (Dapr ``secretstores.local.env``).

With metadata ``prefix`` set, secret ``X`` reads variable ``<prefix>X`` and the bulk read lists
only variables carrying the prefix, with the prefix removed. Variables that configure a runtime
(``APP_API_TOKEN``, ``DAPR_*``, ``PYLOTTO_*``) are never handed out.
"""

from __future__ import annotations

import os

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.secretstores.base import Secret, SecretStore
from pylotto.core.errors import NotFound, PermissionDenied
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata

FORBIDDEN_NAMES = frozenset({"APP_API_TOKEN"})
FORBIDDEN_PREFIXES = ("DAPR_", "PYLOTTO_")


def is_allowed(variable: str) -> bool:
    upper = variable.upper()
    return upper not in FORBIDDEN_NAMES and not upper.startswith(FORBIDDEN_PREFIXES)


class LocalEnvSettings(ComponentSettings):
    prefix: str = Field("", alias="prefix")


class LocalEnvSecretStore(SecretStore):
    Settings = LocalEnvSettings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, LocalEnvSettings):
            raise TypeError(f"{type(self).__name__} needs LocalEnvSettings")
        self.prefix = settings.prefix

    async def get_secret(self, key: str, metadata: Metadata) -> Secret:
        variable = self.prefix + key
        if not is_allowed(variable):
            raise PermissionDenied(
                f"secret store {self.name}: environment variable {variable} is reserved"
            )
        value = os.environ.get(variable)
        if value is None:
            raise NotFound(
                f"secret {key} not found in secret store {self.name} "
                f"(no environment variable {variable})"
            )
        return {key: value}

    async def bulk_get_secret(self, metadata: Metadata) -> dict[str, Secret]:
        found: dict[str, Secret] = {}
        for variable, value in os.environ.items():
            if len(variable) <= len(self.prefix) or not variable.startswith(self.prefix):
                continue
            if not is_allowed(variable):
                continue
            name = variable[len(self.prefix) :]
            found[name] = {name: value}
        return found
