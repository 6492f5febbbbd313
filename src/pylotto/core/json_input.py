"""THE decoding of JSON that comes from outside: request bodies, event payloads, queries.

:func:`decode_json` refuses, as :class:`~pylotto.core.errors.InvalidArgument` (gRPC
``INVALID_ARGUMENT``, HTTP 400 ``ERR_MALFORMED_REQUEST``), what would otherwise fail later and
deeper as an internal error:

- bytes that are not UTF-8 (no UTF-16/32 guessing: JSON on the wire is UTF-8) — :class:`NotJson`;
- text that is not JSON, ``NaN``/``Infinity`` included — :class:`NotJson`;
- nesting deeper than :data:`MAX_JSON_DEPTH` (``"[" * 100000`` would end in a RecursionError) —
  :class:`JsonRefused`;
- a lone UTF-16 surrogate escape (``"\\ud800"``): valid JSON syntax, but no UTF-8 text can hold
  it, so every later encoding of the value would fail — :class:`JsonRefused`;
- numbers Python cannot hold as Go would (an integer of more than 4300 digits, ``1e999``) —
  :class:`JsonRefused`.

The depth is measured on the raw text before decoding, in time linear in its length and at C
speed (the string literals are cut out by one regular expression, the brackets counted by
``itertools.accumulate``); a text with at most ``MAX_JSON_DEPTH`` brackets skips even that.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from pylotto.core.errors import InvalidArgument

MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects accepted: protobuf's own default recursion limit (its
binary and JSON parsers refuse deeper messages). Go's encoding/json, which Dapr uses, allows
10000; a departure no real document meets, and the bound keeps every later walk of a decoded
value (re-encoding, query evaluation) far from Python's recursion limit."""


class NotJson(InvalidArgument):
    """The input is not UTF-8 JSON text."""


class JsonRefused(InvalidArgument):
    """The input is JSON, but beyond what pylotto holds (depth, lone surrogates, huge numbers)."""


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
"""A JSON string literal; an unterminated one runs to the end (so the search never restarts)."""
_KEEP_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
for _byte in b"[{":
    _STEP[_byte] = 1
for _byte in b"]}":
    _STEP[_byte] = -1
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in the JSON text ``raw`` (brackets inside strings do
    not count)."""
    if raw.count(b"[") + raw.count(b"{") == 0:
        return 0
    brackets = _STRING.sub(b'""', raw).translate(None, _KEEP_BRACKETS)
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:40]} is out of range")
    return number


class _Constant(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity``: Python reads them, JSON has no such literal."""


def _no_constant(name: str) -> Any:
    raise _Constant(f"{name} is not a JSON value")


def decode_json(data: bytes | bytearray | memoryview | str, what: str = "the body") -> Any:
    """``data`` decoded as JSON; :class:`NotJson` or :class:`JsonRefused` (both
    InvalidArgument, their message naming ``what``) when it cannot be taken."""
    if isinstance(data, str):
        text = data
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonRefused(f"{what} holds a lone UTF-16 surrogate") from None
    else:
        raw = bytes(data)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotJson(f"{what} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and nesting_depth(raw) > MAX_JSON_DEPTH:
        raise JsonRefused(f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except (json.JSONDecodeError, _Constant) as exc:
        raise NotJson(f"{what} is not valid JSON: {exc}") from None
    except ValueError as exc:  # int() past 4300 digits, _finite
        raise JsonRefused(f"{what} holds a number out of range: {exc}") from None
    except RecursionError:  # not reached below MAX_JSON_DEPTH; kept as the last guard
        raise JsonRefused(f"{what} nests JSON too deep") from None
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonRefused(
                f"{what} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)") from None
    return value
