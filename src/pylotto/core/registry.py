"""Component type names → classes, imported lazily.

Each ``pylotto.components.<capability>`` package declares ``ALIASES``: its short type names
(Layotto style: ``in-memory``, ``redis``) mapped to ``"module:Class"``. Dapr's full names
(``state.redis``, ``secretstores.local.file``) resolve by dropping the capability prefix.
Third-party components register the entry point group ``pylotto.components`` with names like
``state.mystore``. Only the selected classes are imported, so unused drivers never load.

A component's ``version`` (Dapr's ``spec.version``) picks another class where a package
declares one as ``"<type>/<version>"`` (``postgresql/v2``); any other version resolves to the
type's one class, as before.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from pylotto.components.base import Component
from pylotto.core import extras
from pylotto.core.errors import ConfigError

ENTRY_POINT_GROUP = "pylotto.components"


@dataclass(frozen=True)
class CapabilityInfo:
    name: str
    label: str
    """How errors name one component: "state store", "lock store"..."""
    dapr_prefix: str


CAPABILITIES: dict[str, CapabilityInfo] = {
    info.name: info
    for info in (
        CapabilityInfo("secretstores", "secret store", "secretstores."),
        CapabilityInfo("hello", "hello service", "hello."),
        CapabilityInfo("configuration", "configuration store", "configuration."),
        CapabilityInfo("state", "state store", "state."),
        CapabilityInfo("bindings", "binding", "bindings."),
        CapabilityInfo("pubsub", "pubsub", "pubsub."),
        CapabilityInfo("file", "file store", "file."),
        CapabilityInfo("lock", "lock store", "lock."),
        CapabilityInfo("sequencer", "sequencer store", "sequencer."),
        CapabilityInfo("email", "email service", "email."),
        CapabilityInfo("crypto", "crypto provider", "crypto."),
        CapabilityInfo("oss", "object storage", "oss."),
    )
}
"""Every capability, in start-up order (secret stores before the components that use them)."""


def aliases(capability: str) -> dict[str, str]:
    module = importlib.import_module(f"pylotto.components.{capability}")
    table: dict[str, str] = dict(getattr(module, "ALIASES", {}))
    from pylotto.components.pluggable.discovery import GENERIC_TYPES

    table.update(GENERIC_TYPES.get(capability, {}))
    return table


def _plugins(capability: str) -> dict[str, str]:
    prefix = f"{capability}."
    return {
        ep.name[len(prefix) :]: ep.value
        for ep in entry_points(group=ENTRY_POINT_GROUP)
        if ep.name.startswith(prefix)
    }


def known_types(capability: str) -> list[str]:
    info = CAPABILITIES[capability]
    names = [n for n in (*aliases(capability), *_plugins(capability)) if "/" not in n]
    return sorted({*names, *(info.dapr_prefix + n for n in names)})


def normalise(capability: str, type_name: str) -> str:
    prefix = CAPABILITIES[capability].dapr_prefix
    return type_name[len(prefix) :] if type_name.startswith(prefix) else type_name


def resolve(capability: str, type_name: str, version: str = "") -> type[Component]:
    """The component class for ``type_name`` (at ``version``, where the type has a class of its
    own for it); ConfigError with a suggestion when unknown."""
    if capability not in CAPABILITIES:
        raise ConfigError(f"unknown capability {capability!r}")
    short = normalise(capability, type_name)
    table = aliases(capability)
    target = None if "/" in short else (
        table.get(f"{short}/{version}") or table.get(short) or _plugins(capability).get(short))
    if target is None:
        from pylotto.components.pluggable.discovery import socket_type

        found = socket_type(capability, short)
        if found is not None:
            return found
        known = known_types(capability)
        close = difflib.get_close_matches(type_name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
        raise ConfigError(f"unknown {capability} component type {type_name!r}{hint}")
    module_name, _, class_name = target.partition(":")
    if (absent := extras.missing(module_name)) is not None:
        raise ConfigError(f"{capability} component type {type_name!r}: {absent}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise ConfigError(
            f"{capability} component type {type_name!r}: {extras.named(exc)}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Component)):
        raise ConfigError(f"{target} is not a pylotto Component")
    return cls
