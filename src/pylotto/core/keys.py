"""Key prefix strategies (component metadata ``keyPrefix``), shared by state, lock and sequencer.

``appid`` → ``{app_id}||{key}``, ``name`` → ``{component}||{key}``, ``none`` → ``{key}``,
``namespace`` → ``{NAMESPACE}.{app_id}||{key}`` (daprd's; ``appid`` when ``NAMESPACE`` is unset),
any other value S → ``s||{key}``, lower-cased as daprd and Layotto both do. Neither a key nor a
custom prefix may contain ``||``. The strategy when none is given differs by dialect (a Dapr
manifest's state store: ``appid``, see :mod:`pylotto.config.manifests`).
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import AfterValidator

from pylotto.core.errors import InvalidArgument

SEPARATOR = "||"


def _valid_prefix(value: str) -> str:
    if SEPARATOR in value:
        raise ValueError(f"a key prefix can't contain '{SEPARATOR}'")
    return value


KeyPrefix = Annotated[str, AfterValidator(_valid_prefix)]
"""The type of a component's ``keyPrefix`` setting: a bad prefix fails at start-up."""


def check_no_separator(value: str) -> None:
    """A key or key prefix may not contain ``||`` (Dapr's and Layotto's text)."""
    if SEPARATOR in value:
        raise InvalidArgument(f"input key/keyPrefix '{value}' can't contain '{SEPARATOR}'")


def key_prefix(strategy: str, *, app_id: str, component: str) -> str:
    """The prefix (without separator) a strategy gives; "" for none."""
    lowered = strategy.lower()
    if lowered == "none" or not strategy:
        return ""
    if lowered == "appid":
        return app_id
    if lowered == "name":
        return component
    if lowered == "namespace":
        namespace = os.environ.get("NAMESPACE", "")
        return f"{namespace}.{app_id}" if namespace and app_id else app_id
    check_no_separator(strategy)
    return lowered


def prefixed(prefix: str, key: str) -> str:
    """The stored key for ``key`` under ``prefix`` (from :func:`key_prefix`)."""
    check_no_separator(key)
    return f"{prefix}{SEPARATOR}{key}" if prefix else key


def original(stored_key: str) -> str:
    """The user's key back from a stored key."""
    _, sep, rest = stored_key.partition(SEPARATOR)
    return rest if sep else stored_key
