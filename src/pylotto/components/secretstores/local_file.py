"""``local.file``: secrets from a JSON file read at start-up (Dapr ``secretstores.local.file``).

Nested objects and arrays are flattened into keys joined with ``nestedSeparator`` (default
``":"``): ``{"db": {"password": "x"}}`` gives the secret ``db:password``. With ``multiValued``
true, each top-level key is one secret whose value is the flattened map below it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.secretstores.base import Secret, SecretStore
from pylotto.core.errors import ConfigError, NotFound
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata


class LocalFileSettings(ComponentSettings):
    secrets_file: str = Field(alias="secretsFile", min_length=1)
    """Path of the JSON file; relative paths are taken from the working directory."""
    nested_separator: str = Field(":", alias="nestedSeparator")
    multi_valued: bool = Field(False, alias="multiValued")


def scalar_text(value: Any) -> str:
    """How a JSON leaf reads as a secret value."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)  # true/false and numbers as JSON spells them


def flatten(value: Any, separator: str, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Yield ``(joined key, text)`` for every leaf under ``value``."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from flatten(child, separator, (*path, str(key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from flatten(child, separator, (*path, str(index)))
    else:
        yield separator.join(path), scalar_text(value)


def _unique(pairs: Iterator[tuple[str, str]], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, text in pairs:
        if key in out:
            raise ConfigError(f"{where}: the flattened secret key {key!r} appears twice")
        out[key] = text
    return out


def load_secrets(
    document: Any, separator: str, multi_valued: bool, where: str
) -> dict[str, Secret]:
    """Turn the parsed JSON into ``{secret name: {key: value}}``."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where}: expected a JSON object at the top level")
    if multi_valued:
        secrets: dict[str, Secret] = {}
        for name, value in document.items():
            if isinstance(value, dict | list):
                secrets[str(name)] = _unique(flatten(value, separator), where)
            else:
                secrets[str(name)] = {str(name): scalar_text(value)}
        return secrets
    flat = _unique(flatten(document, separator), where)
    return {key: {key: text} for key, text in flat.items()}


class LocalFileSecretStore(SecretStore):
    Settings = LocalFileSettings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, LocalFileSettings):
            raise TypeError(f"{type(self).__name__} needs LocalFileSettings")
        self.path = Path(settings.secrets_file).expanduser()
        self.separator = settings.nested_separator or ":"
        self.multi_valued = settings.multi_valued
        self._secrets: dict[str, Secret] = {}

    @property
    def multiple_values_per_secret(self) -> bool:
        return self.multi_valued

    async def init(self) -> None:
        where = f"secret store {self.name}: secretsFile {str(self.path)!r}"
        try:
            text = await asyncio.to_thread(self.path.read_text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not valid JSON: {exc}") from None
        self._secrets = load_secrets(document, self.separator, self.multi_valued, where)
        self.context.logger.debug("loaded %d secrets from %s", len(self._secrets), self.path)

    async def get_secret(self, key: str, metadata: Metadata) -> Secret:
        try:
            return dict(self._secrets[key])
        except KeyError:
            raise NotFound(f"secret {key} not found in secret store {self.name}") from None

    async def bulk_get_secret(self, metadata: Metadata) -> dict[str, Secret]:
        return {name: dict(secret) for name, secret in self._secrets.items()}
