"""JSON as Go's ``encoding/json`` writes it (``json.Marshal``): what daprd and
components-contrib answer is compared byte for byte by apps, so pylotto writes the same."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class RawNumber:
    """A JSON number written as given (a PostgreSQL ``numeric`` with its scale: ``12.50``)."""

    text: str


class GoStruct(dict[str, Any]):
    """A Go struct's JSON: its fields in declaration order (a plain dict is a Go map, written
    with its keys sorted)."""


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}


def go_float(value: float) -> str:
    """A float as Go's ``encoding/json`` writes it: the shortest digits, fixed notation from
    1e-6 to 1e21 (``1``, ``0.5``, ``10000000000000000``), exponent notation outside
    (``1e+21``, ``1e-07``)."""
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {value}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return repr(value)
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def float32(value: float) -> float:
    """The float whose shortest digits are those of ``value`` as a Go ``float32`` (a
    PostgreSQL ``real`` read as a double: 0.10000000149011612 → 0.1)."""
    if not math.isfinite(value):
        return value
    single = float(struct.unpack("<f", struct.pack("<f", value))[0])
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if struct.unpack("<f", struct.pack("<f", float(text)))[0] == single:
            return float(text)
    return single


def go_json(value: Any, *, float64: bool = False) -> str:
    """``value`` (JSON types, :class:`RawNumber`) as Go's ``json.Marshal`` writes it: compact,
    keys of maps sorted (:class:`GoStruct` fields in order), ``<``, ``>``, ``&`` escaped as
    ``\\u003c``... With ``float64``, integers are written as the float64 Go decoded them into
    (a JSON document read into ``interface{}``: 12345678901234567890 → 12345678901234567000)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return go_float(float(value)) if float64 else str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, RawNumber):
        return value.text
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return "".join(_GO_ESCAPES.get(char, char) for char in text)
    if isinstance(value, dict):
        items = value.items() if isinstance(value, GoStruct) else sorted(value.items())
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(v, float64=float64)}"
                              for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item, float64=float64) for item in value) + "]"
    raise TypeError(f"json: unsupported type: {type(value).__name__}")
