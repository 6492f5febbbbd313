"""Decode component metadata (string map, camelCase keys) into a typed settings object.

Every component declares a ``Settings`` model (a :class:`ComponentSettings` subclass) whose fields
carry the Dapr spelling of the key as alias. :func:`decode` matches keys case-insensitively,
warns once for an unknown key, and turns a bad value into a :class:`ConfigError` that names the
component, the key and what was expected.
"""

from __future__ import annotations

import difflib
import enum
import logging
import math
import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from pylotto.core.errors import ConfigError, InvalidArgument

log = logging.getLogger("pylotto.metadata")


# ---- value types shared by component settings ---------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}


def parse_duration(value: object) -> float:
    """Seconds from a Go duration (``"500ms"``, ``"1m30s"``) or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '500ms', '5s' or '1m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if not _DURATION.fullmatch(text):
                raise ValueError(
                    f"{value!r} is not a duration such as '500ms', '5s' or '1m'"
                ) from None
            seconds = sum(
                float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(text)
            )
    else:
        raise ValueError("expected a duration such as '500ms', '5s' or '1m'")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} must be a finite, non-negative duration")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in metadata as a Go duration or a bare number of seconds."""


_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(i?b?)", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Bytes in ``1048576``, ``"512Ki"``, ``"100MB"``, ``"1Gi"`` (multiples of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a size such as '1048576', '512Ki' or '100Mi'")
    power = " kmgt".index(match.group(2).lower() or " ")
    return int(match.group(1)) << (10 * power)


ByteSize = Annotated[int, BeforeValidator(parse_size)]
"""Bytes, written in metadata as a number or with a K/M/G/T (1024-based) suffix."""


MAX_TTL_SECONDS = 2**31 - 1
"""The longest ``ttlInSeconds`` a state write or a publish takes (about 68 years). It is Dapr's
own bound (components-contrib ``state/utils.ParseTTL`` refuses more), and now plus this many
seconds is a moment every store and broker can hold: Python's ``datetime`` (year 9999), Redis'
millisecond expiries, etcd leases, SQL timestamps."""

TTL_IN_SECONDS = "ttlInSeconds"
_TTL = re.compile(r"[+-]?[0-9]+")


def parse_ttl_seconds(value: str, *, minimum: int, key: str = TTL_IN_SECONDS) -> int:
    """``value`` of ``ttlInSeconds`` metadata as seconds in ``[minimum, MAX_TTL_SECONDS]``; an
    InvalidArgument naming the key otherwise. The one decoding of a TTL: a TTL no store can
    hold is refused here, before any store keeps it."""
    text = value.strip()
    shown = text if len(text) <= 40 else text[:37] + "..."
    if not _TTL.fullmatch(text):
        raise InvalidArgument(f"metadata {key}={shown!r} is not an integer number of seconds")
    # more digits than any bound has: out of range, and never handed to int() (which refuses
    # more than 4300 digits, and is slow long before that)
    ttl = int(text) if len(text) <= 20 else (-1 if text[0] == "-" else 1) * (MAX_TTL_SECONDS + 1)
    if ttl > MAX_TTL_SECONDS:
        raise InvalidArgument(
            f"metadata {key}={shown!r} is longer than the longest TTL, {MAX_TTL_SECONDS} s")
    if ttl < minimum:
        if ttl < -MAX_TTL_SECONDS:
            raise InvalidArgument(f"metadata {key}={shown!r} is out of range")
        lowest = "higher than zero" if minimum == 1 else f"at least {minimum}"
        raise InvalidArgument(f"metadata {key}={shown!r} must be {lowest}")
    return ttl


def _ttl_setting(value: object) -> object:
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return parse_ttl_seconds(str(value), minimum=-MAX_TTL_SECONDS)
        except InvalidArgument as exc:
            raise ValueError(exc.message) from None
    return value


TtlSeconds = Annotated[int, BeforeValidator(_ttl_setting)]
"""A component's default ``ttlInSeconds``: the bounds of :func:`parse_ttl_seconds`."""


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


def _choices(annotation: Any) -> dict[str, Any]:
    """The string form of each non-string choice of a field (``Literal[1, 2]``, an Enum, also
    inside ``Optional``/``Annotated``): ``{"1": 1, "2": 2}``. Metadata values are strings in
    Layotto and Dapr configs, so ``"qos": "1"`` must mean ``1``."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _choices(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        out: dict[str, Any] = {}
        for arg in get_args(annotation):
            out.update(_choices(arg))
        return out
    if origin is Literal:
        return {str(v).lower(): v for v in get_args(annotation)
                if not isinstance(v, str) and not isinstance(v, bool)}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        out = {}
        for member in annotation:
            out[member.name.lower()] = member
            out[str(member.value).lower()] = member
        return out
    return {}


def string_form(model: type[ComponentSettings], field_name: str, value: Any) -> Any:
    """``value`` with a string standing for one of the field's non-string choices replaced by
    that choice; numbers and booleans are already read from strings by pydantic's lax mode."""
    if not isinstance(value, str):
        return value
    field = model.model_fields.get(field_name)
    if field is None:
        return value
    choices = _choices(field.annotation)
    return choices.get(value.strip().lower(), value) if choices else value


_warned: set[tuple[str, str]] = set()
"""(component, key) pairs already warned about: a config is decoded when it is checked and
again when the component starts, and the warning is worth saying once."""


def _unknown_key(component: str, key: str, keys: dict[str, str],
                 model: type[ComponentSettings]) -> None:
    if (component, key) in _warned:
        return
    _warned.add((component, key))
    spellings = sorted({f.alias or n for n, f in model.model_fields.items()})
    close = difflib.get_close_matches(key, spellings, n=1, cutoff=0.6)
    if not close:  # case-insensitive second try (segmentsize → segmentSize)
        lowered = difflib.get_close_matches(key.lower(), list(keys), n=1, cutoff=0.6)
        if lowered:
            field = model.model_fields[keys[lowered[0]]]
            close = [field.alias or keys[lowered[0]]]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    log.warning("component %s: unknown metadata key %r ignored%s", component, key, hint)


def decode(model: type[S], metadata: Mapping[str, Any], *, component: str) -> S:
    """Build ``model`` from ``metadata``; ``component`` names the component in every message."""
    keys = known_keys(model)
    values: dict[str, Any] = {}
    for key, value in metadata.items():
        field_name = keys.get(key.lower())
        if field_name is None and model.model_config.get("extra") == "allow":
            values[key] = value  # a model that keeps unknown keys (pluggable components)
            continue
        if field_name is None:
            _unknown_key(component, key, keys, model)
            continue
        values[field_name] = string_form(model, field_name, value)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # a rule across keys (a model validator): its message says all
            reason = str(first["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"component {component}: {reason}") from None
        field_name = str(first["loc"][0])
        field = model.model_fields.get(field_name)
        key = (field.alias if field and field.alias else field_name) if field else field_name
        got = masked(key, values.get(field_name, "<missing>"))
        raise ConfigError(
            f"component {component}: metadata key {key!r} = {got!r}: {first['msg']}"
        ) from None


_SECRET_KEY = re.compile(r"password|secret|token|credential|apikey", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@|(^[^:/@\s]*:)(?!//)[^@\s]*@")
_DSN_PASSWORD = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)


def masked(key: str, value: object) -> object:
    """``value`` fit for an error message: secrets hidden, passwords cut out of connection
    strings."""
    if _SECRET_KEY.search(key):
        return "***"
    if isinstance(value, Mapping):  # nested settings (a list of endpoints): each key masked
        return {k: masked(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(key, v) for v in value]
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(lambda m: (m.group(1) or m.group(2)) + "***@", value)
        return _DSN_PASSWORD.sub(r"\1***", value)
    return value


BULK_DEFAULTS = (100, 1000)
"""Dapr's ``bulkSubscribe`` defaults: maxMessagesCount, maxAwaitDurationMs."""


def bulk_subscribe(spec: object) -> tuple[int, int] | None:
    """A subscription's ``bulkSubscribe`` object (``/dapr/subscribe`` JSON, a manifest, the
    gRPC message as a dict): (maxMessagesCount, maxAwaitDurationMs) when ``enabled``, Dapr's
    defaults for a missing or non-positive value; None when not enabled."""
    if not isinstance(spec, Mapping) or str(spec.get("enabled")).lower() != "true":
        return None

    def number(key: str, default: int) -> int:
        try:
            value = int(str(spec.get(key, default)))
        except ValueError:
            return default
        return value if value > 0 else default

    return (number("maxMessagesCount", BULK_DEFAULTS[0]),
            number("maxAwaitDurationMs", BULK_DEFAULTS[1]))
