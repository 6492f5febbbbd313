"""The app's actor settings → one :class:`EntityConfig` per hosted type, as daprd reads them
(docs/design/actors.md §1.1; dapr pkg/config/app_configuration.go, pkg/actors/api/config.go,
pkg/actors/actors.go RegisterHosted).

The input is the JSON body of ``GET /dapr/config`` (camelCase keys) or the same fields, as a
dict, from the gRPC stream's ``initial_request`` (snake_case keys are accepted too):

- ``entities``: the hosted types; ``actorIdleTimeout`` (default ``60m``),
  ``drainOngoingCallTimeout`` (``2s``), ``drainRebalancedActors``, ``reentrancy {enabled,
  maxStackDepth (32)}``: the defaults of every hosted type.
- ``entitiesConfig``: per-type overrides. As in daprd, an override's idle timeout and
  reentrancy replace the defaults *whole* (an override without ``actorIdleTimeout`` has 60m,
  not the app's default); its drain settings apply when given.
- Durations are Go durations; an invalid one logs a warning (once per value) and the default
  is used. ``remindersStoragePartitions`` (deprecated in daprd) is accepted and ignored;
  ``actorScanInterval`` (sent by the Python SDK, unknown to daprd) is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pylotto.capabilities.actors.api import EntityConfig, Reentrancy
from pylotto.core.schedule import parse_go_duration

log = logging.getLogger("pylotto.actors")

DEFAULT_IDLE_TIMEOUT = 3600.0
DEFAULT_DRAIN_TIMEOUT = 2.0
DEFAULT_STACK_DEPTH = 32

_warned: set[tuple[str, str]] = set()


def _field(raw: Mapping[str, Any], camel: str, snake: str) -> Any:
    if camel in raw:
        return raw[camel]
    return raw.get(snake)


def _duration(raw: Mapping[str, Any], camel: str, snake: str, what: str) -> float | None:
    """The seconds of a duration field (None: absent, empty or invalid; invalid warns)."""
    value = _field(raw, camel, snake)
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value)
    try:
        return parse_go_duration(text).total_seconds()
    except ValueError:
        if (what, text) not in _warned:
            _warned.add((what, text))
            log.warning("actors: invalid %s %r, using the default", what, text)
        return None


def _bool(raw: Mapping[str, Any], camel: str, snake: str) -> bool | None:
    value = _field(raw, camel, snake)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _reentrancy(raw: Mapping[str, Any]) -> Reentrancy:
    value = raw.get("reentrancy")
    if not isinstance(value, Mapping):
        return Reentrancy()
    depth = _field(value, "maxStackDepth", "max_stack_depth")
    try:
        max_depth = DEFAULT_STACK_DEPTH if depth is None else int(depth)
    except (TypeError, ValueError):
        max_depth = DEFAULT_STACK_DEPTH
    return Reentrancy(enabled=bool(value.get("enabled", False)), max_stack_depth=max_depth)


def _types(raw: Mapping[str, Any]) -> list[str]:
    value = raw.get("entities")
    if not isinstance(value, list | tuple):
        return []
    return [str(item) for item in value if str(item)]


def parse_app_config(raw: Mapping[str, Any] | None) -> dict[str, EntityConfig]:
    """Every hosted type's settings ({}: the app hosts none; ``raw`` None or not an object
    as well — daprd's "no config")."""
    if not isinstance(raw, Mapping):
        return {}
    hosted = _types(raw)
    if not hosted:
        return {}
    idle = _duration(raw, "actorIdleTimeout", "actor_idle_timeout", "actor idle timeout")
    drain = _duration(raw, "drainOngoingCallTimeout", "drain_ongoing_call_timeout",
                      "drain ongoing call timeout")
    rebalanced = _bool(raw, "drainRebalancedActors", "drain_rebalanced_actors")
    default = EntityConfig(
        idle_timeout=DEFAULT_IDLE_TIMEOUT if idle is None else idle,
        drain_ongoing_call_timeout=DEFAULT_DRAIN_TIMEOUT if drain is None else drain,
        drain_rebalanced_actors=bool(rebalanced),
        reentrancy=_reentrancy(raw),
    )
    configs = dict.fromkeys(hosted, default)
    overrides = _field(raw, "entitiesConfig", "entities_config")
    for override in overrides if isinstance(overrides, list | tuple) else ():
        if not isinstance(override, Mapping):
            continue
        o_idle = _duration(override, "actorIdleTimeout", "actor_idle_timeout",
                           "actor idle timeout")
        o_drain = _duration(override, "drainOngoingCallTimeout", "drain_ongoing_call_timeout",
                            "drain ongoing call timeout")
        o_rebalanced = _bool(override, "drainRebalancedActors", "drain_rebalanced_actors")
        entity = EntityConfig(
            idle_timeout=DEFAULT_IDLE_TIMEOUT if o_idle is None else o_idle,
            drain_ongoing_call_timeout=(default.drain_ongoing_call_timeout if o_drain is None
                                        else o_drain),
            drain_rebalanced_actors=(default.drain_rebalanced_actors if o_rebalanced is None
                                     else o_rebalanced),
            reentrancy=_reentrancy(override),
        )
        for actor_type in _types(override):
            if actor_type in configs:
                configs[actor_type] = entity
            else:
                log.warning("actors: configuration specified for non-hosted actor type: %s",
                            actor_type)
    return configs


__all__ = ["DEFAULT_DRAIN_TIMEOUT", "DEFAULT_IDLE_TIMEOUT", "DEFAULT_STACK_DEPTH",
           "parse_app_config"]
