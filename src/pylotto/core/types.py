"""Type aliases shared across the package."""

from __future__ import annotations

from collections.abc import Mapping

Metadata = Mapping[str, str]
"""Component or request metadata: string keys and string values, Dapr style."""

JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]
