"""The state query model (Dapr's query JSON), its parser and a reference evaluator.

Dapr's format::

    {"filter": {"AND": [{"EQ": {"person.org": "Dev Ops"}}, {"GTE": {"age": 30}}]},
     "sort": [{"key": "person.id", "order": "DESC"}],
     "page": {"limit": 10, "token": "..."}}

Filters: ``EQ``, ``IN``, ``GT``, ``GTE``, ``LT``, ``LTE`` take one ``{path: value}`` pair (``IN`` a
non-empty list of values); ``AND`` / ``OR`` take a list of at least two filters. Paths are
dot-separated field names inside the JSON value. A missing or empty ``filter`` matches everything.
``page.limit`` 0 (or absent) means no limit; ``page.token`` is the opaque continuation token of the
previous page. The store only ever sees :class:`Query`; ``key_prefix`` is set by the capability and
the store must return only keys starting with it.
"""

from __future__ import annotations

import abc
import base64
import binascii
import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pylotto.core.errors import InvalidArgument
from pylotto.core.json_input import decode_json
from pylotto.core.types import Metadata

Scalar: TypeAlias = str | int | float | bool | None
Path: TypeAlias = tuple[str, ...]


class RangeOp(enum.StrEnum):
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"


class Order(enum.StrEnum):
    ASC = "ASC"
    DESC = "DESC"


@dataclass(frozen=True, slots=True)
class Eq:
    path: Path
    value: Scalar


@dataclass(frozen=True, slots=True)
class In:
    path: Path
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Range:
    op: RangeOp
    path: Path
    value: str | int | float


@dataclass(frozen=True, slots=True)
class And:
    filters: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    filters: tuple[Filter, ...]


Filter: TypeAlias = Eq | In | Range | And | Or


@dataclass(frozen=True, slots=True)
class SortKey:
    path: Path
    order: Order = Order.ASC


@dataclass(frozen=True, slots=True)
class Query:
    filter: Filter | None = None
    sort: tuple[SortKey, ...] = ()
    limit: int = 0
    token: str = ""
    key_prefix: str = ""


@dataclass(frozen=True, slots=True)
class QueryItem:
    key: str
    value: bytes
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class QueryResult:
    items: list[QueryItem] = field(default_factory=list)
    token: str = ""
    """Continuation token for the next page; empty when this was the last page."""


class QueryableStateStore(abc.ABC):
    """Mixin for stores declaring ``Feature.QUERY_API``."""

    @abc.abstractmethod
    async def query(self, query: Query, metadata: Metadata) -> QueryResult: ...


# ---------------------------------------------------------------------------------------- parsing

_RANGE_OPS = {op.value: op for op in RangeOp}


def parse_query(raw: str | bytes | Mapping[str, Any]) -> Query:
    """Parse and validate Dapr query JSON; any problem raises :class:`InvalidArgument`."""
    doc: Any = decode_json(raw, "the query") if isinstance(raw, str | bytes) else raw
    if not isinstance(doc, Mapping):
        raise InvalidArgument("query must be a JSON object")
    unknown = set(doc) - {"filter", "sort", "page"}
    if unknown:
        raise InvalidArgument(f"query has unknown field(s): {', '.join(sorted(unknown))}")
    flt = doc.get("filter")
    parsed_filter: Filter | None = None
    if flt is not None and flt != {}:
        parsed_filter = _parse_filter(flt)
    sort = _parse_sort(doc.get("sort"))
    limit, token = _parse_page(doc.get("page"))
    return Query(filter=parsed_filter, sort=sort, limit=limit, token=token)


def parse_path(raw: object) -> Path:
    if not isinstance(raw, str) or not raw:
        raise InvalidArgument("query path must be a non-empty string")
    parts = tuple(raw.split("."))
    if any(not p for p in parts):
        raise InvalidArgument(f"query path {raw!r} has an empty segment")
    return parts


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def _single_pair(op: str, body: object) -> tuple[Path, Any]:
    if not isinstance(body, Mapping) or len(body) != 1:
        raise InvalidArgument(f"{op} filter must be an object with exactly one field")
    ((path, value),) = body.items()
    return parse_path(path), value


def _parse_filter(raw: object) -> Filter:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise InvalidArgument("a filter must be an object with exactly one operator")
    ((op, body),) = raw.items()
    if op in ("AND", "OR"):
        if not isinstance(body, list) or len(body) < 2:
            raise InvalidArgument(f"{op} filter must be a list of at least two filters")
        children = tuple(_parse_filter(child) for child in body)
        return And(children) if op == "AND" else Or(children)
    if op == "EQ":
        path, value = _single_pair(op, body)
        if not _is_scalar(value):
            raise InvalidArgument("EQ value must be a string, number, boolean or null")
        return Eq(path, value)
    if op == "IN":
        path, values = _single_pair(op, body)
        if not isinstance(values, list) or not values:
            raise InvalidArgument("IN value must be a non-empty list")
        if not all(_is_scalar(v) for v in values):
            raise InvalidArgument("IN values must be strings, numbers, booleans or null")
        return In(path, tuple(values))
    if op in _RANGE_OPS:
        path, value = _single_pair(op, body)
        numeric_or_text = isinstance(value, str | int | float) and not isinstance(value, bool)
        if not numeric_or_text or not _is_scalar(value):
            raise InvalidArgument(f"{op} value must be a number or a string")
        return Range(_RANGE_OPS[op], path, value)
    raise InvalidArgument(f"unknown filter operator {op!r}")


def _parse_sort(raw: object) -> tuple[SortKey, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidArgument("sort must be a list")
    keys: list[SortKey] = []
    for item in raw:
        if not isinstance(item, Mapping) or "key" not in item or set(item) - {"key", "order"}:
            raise InvalidArgument('each sort entry must be {"key": path, "order": "ASC"|"DESC"}')
        order = item.get("order", "ASC")
        if order not in ("ASC", "DESC"):
            raise InvalidArgument(f"sort order must be ASC or DESC, not {order!r}")
        keys.append(SortKey(parse_path(item["key"]), Order(order)))
    return tuple(keys)


def _parse_page(raw: object) -> tuple[int, str]:
    if raw is None:
        return 0, ""
    if not isinstance(raw, Mapping) or set(raw) - {"limit", "token"}:
        raise InvalidArgument('page must be {"limit": n, "token": "..."}')
    limit = raw.get("limit", 0)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidArgument("page.limit must be a non-negative integer")
    token = raw.get("token", "")
    if not isinstance(token, str):
        raise InvalidArgument("page.token must be a string")
    return limit, token


# ------------------------------------------------------------------------------ offset tokens


def encode_offset_token(offset: int) -> str:
    """An opaque token meaning "continue at result position ``offset``"."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_offset_token(token: str) -> int:
    """Offset from :func:`encode_offset_token`; "" is 0; anything else raises InvalidArgument."""
    if not token:
        return 0
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = doc["o"]
    except (ValueError, binascii.Error, KeyError, TypeError) as exc:
        raise InvalidArgument("invalid query page token") from exc
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument("invalid query page token")
    return offset


# ---------------------------------------------------------------------------- evaluation

_MISSING = object()


def lookup(document: object, path: Path) -> object:
    """The value at ``path`` in a decoded JSON document, or a private MISSING marker."""
    current = document
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    scalar_types = (int, float, str, type(None))
    return a == b and type(a) in scalar_types and type(b) in scalar_types


def _compare(op: RangeOp, actual: object, bound: str | int | float) -> bool:
    if isinstance(actual, bool):
        return False
    if isinstance(bound, str):
        if not isinstance(actual, str):
            return False
        a_s, b_s = actual, bound
        return _ordered(op, a_s < b_s, a_s == b_s)
    if not isinstance(actual, int | float):
        return False
    return _ordered(op, actual < bound, actual == bound)


def _ordered(op: RangeOp, less: bool, equal: bool) -> bool:
    if op is RangeOp.GT:
        return not less and not equal
    if op is RangeOp.GTE:
        return not less
    if op is RangeOp.LT:
        return less
    return less or equal


def matches(flt: Filter | None, document: object) -> bool:
    """Reference semantics of a filter on a decoded JSON value (used by the in-memory store)."""
    if flt is None:
        return True
    if isinstance(flt, And):
        return all(matches(child, document) for child in flt.filters)
    if isinstance(flt, Or):
        return any(matches(child, document) for child in flt.filters)
    actual = lookup(document, flt.path)
    if actual is _MISSING:
        return False
    if isinstance(flt, Eq):
        return _same(actual, flt.value)
    if isinstance(flt, In):
        return any(_same(actual, v) for v in flt.values)
    return _compare(flt.op, actual, flt.value)


def sort_rank(value: object) -> tuple[int, Any]:
    """Total order across JSON types: missing < null < false/true < numbers < strings < others."""
    if value is _MISSING:
        return (0, 0)
    if value is None:
        return (1, 0)
    if isinstance(value, bool):
        return (2, int(value))
    if isinstance(value, int | float):
        return (3, value)
    if isinstance(value, str):
        return (4, value)
    return (5, json.dumps(value, sort_keys=True))


def apply_sort_and_page(rows: Sequence[tuple[str, object, QueryItem]], query: Query) -> QueryResult:
    """Sort ``(key, decoded value, item)`` rows (ties broken by key) and cut the requested page."""
    ordered = sorted(rows, key=lambda r: r[0])
    for sort_key in reversed(query.sort):

        def rank(row: tuple[str, object, QueryItem], path: Path = sort_key.path) -> tuple[int, Any]:
            return sort_rank(lookup(row[1], path))

        ordered.sort(key=rank, reverse=sort_key.order is Order.DESC)
    start = decode_offset_token(query.token)
    end = start + query.limit if query.limit else len(ordered)
    page = [r[2] for r in ordered[start:end]]
    token = encode_offset_token(end) if end < len(ordered) else ""
    return QueryResult(items=page, token=token)


def decode_json_value(value: bytes) -> object:
    """Decoded JSON of a stored value, or MISSING for non-JSON values (they never match)."""
    try:
        return decode_json(value, "the stored value")
    except InvalidArgument:
        return _MISSING


def sort_and_filter_sequence(items: Sequence[QueryItem], query: Query) -> QueryResult:
    """Filter, sort and page already-fetched items with the reference semantics."""
    rows = []
    for item in items:
        if not item.key.startswith(query.key_prefix):
            continue
        doc = decode_json_value(item.value)
        if doc is _MISSING or not matches(query.filter, doc):
            continue
        rows.append((item.key, doc, item))
    return apply_sort_and_page(rows, query)
