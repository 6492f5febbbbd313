"""Decode component metadata (string map, camelCase keys) into a typed settings object.

Every component declares a ``Settings`` model (a :class:`ComponentSettings` subclass) whose fields
carry the Dapr spelling of the key as alias. :func:`decode` matches keys case-insensitively,
warns once for an unknown key, and turns a bad value into a :class:`ConfigError` that names the
component, the key and what was expected.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pylotto.errors import ConfigError

log = logging.getLogger("pylotto.metadata")


class ComponentSettings(BaseModel):
    """Base of every component's settings. Fields use the Dapr key spelling as alias."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


S = TypeVar("S", bound=ComponentSettings)


def known_keys(model: type[ComponentSettings]) -> dict[str, str]:
    """Map each accepted key (lower-cased alias or field name) to its field name."""
    keys: dict[str, str] = {}
    for field_name, field in model.model_fields.items():
        keys[field_name.lower()] = field_name
        if field.alias:
            keys[field.alias.lower()] = field_name
        if field.validation_alias and isinstance(field.validation_alias, str):
            keys[field.validation_alias.lower()] = field_name
    return keys


def decode(model: type[S], metadata: Mapping[str, Any], *, component: str) -> S:
    """Build ``model`` from ``metadata``; ``component`` names the component in every message."""
    keys = known_keys(model)
    values: dict[str, Any] = {}
    for key, value in metadata.items():
        field_name = keys.get(key.lower())
        if field_name is None:
            log.warning("component %s: unknown metadata key %r ignored", component, key)
            continue
        values[field_name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field_name = str(first["loc"][0]) if first["loc"] else "?"
        field = model.model_fields.get(field_name)
        key = (field.alias if field and field.alias else field_name) if field else field_name
        got = values.get(field_name, "<missing>")
        raise ConfigError(
            f"component {component}: metadata key {key!r} = {got!r}: {first['msg']}"
        ) from None
