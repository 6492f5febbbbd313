"""Compile a state :class:`~pylotto.components.state.query.Query` to one PostgreSQL statement.

The SQL gives the results of the reference semantics in :mod:`pylotto.components.state.query`:

- ``EQ`` / ``IN`` compare JSONB values, which is type-exact (``1`` never equals ``"1"``; ``1``
  equals ``1.0``); a missing path is SQL NULL and matches nothing.
- Ranges compare numbers with numbers and strings with strings (``COLLATE "C"``: code point
  order, as Python compares ``str``); any other type never matches.
- Sorting ranks JSON types as the reference does (missing < null < booleans < numbers <
  strings < objects/arrays), then by value within the type, then by key (ties keep key order in
  both directions).
- Paging is ``LIMIT n + 1 OFFSET token``: the extra row tells whether another page exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pylotto.components.state.query import (
    And,
    Eq,
    Filter,
    In,
    Or,
    Order,
    Path,
    Query,
    Range,
    RangeOp,
    decode_offset_token,
)

_SQL_OPS = {RangeOp.GT: ">", RangeOp.GTE: ">=", RangeOp.LT: "<", RangeOp.LTE: "<="}


@dataclass
class CompiledQuery:
    """``sql`` with ``$n`` placeholders for ``args``; ``offset`` is where the page starts."""

    sql: str
    args: list[Any] = field(default_factory=list)
    offset: int = 0
    limit: int = 0


class _Builder:
    def __init__(self, column: str) -> None:
        self.column = column
        self.args: list[Any] = []

    def arg(self, value: Any, cast: str) -> str:
        self.args.append(value)
        return f"${len(self.args)}::{cast}"

    def at(self, path: Path) -> str:
        return f"({self.column} #> {self.arg(list(path), 'text[]')})"

    def text_at(self, path: Path) -> str:
        return f"({self.column} #>> {self.arg(list(path), 'text[]')})"

    def condition(self, flt: Filter) -> str:
        if isinstance(flt, And | Or):
            joiner = " AND " if isinstance(flt, And) else " OR "
            return "(" + joiner.join(self.condition(child) for child in flt.filters) + ")"
        if isinstance(flt, Eq):
            return f"{self.at(flt.path)} = {self.arg(json.dumps(flt.value), 'jsonb')}"
        if isinstance(flt, In):
            values = [json.dumps(v) for v in flt.values]
            return f"{self.at(flt.path)} = ANY({self.arg(values, 'jsonb[]')})"
        return self._range(flt)

    def _range(self, flt: Range) -> str:
        op = _SQL_OPS[flt.op]
        value = self.at(flt.path)
        if isinstance(flt.value, str):
            return (f"(jsonb_typeof({value}) = 'string' AND "
                    f"{self.text_at(flt.path)} COLLATE \"C\" {op} {self.arg(flt.value, 'text')})")
        return (f"(jsonb_typeof({value}) = 'number' AND "
                f"{self.text_at(flt.path)}::numeric {op} {self.arg(str(flt.value), 'numeric')})")

    def order_terms(self, path: Path, order: Order) -> list[str]:
        direction = " DESC" if order is Order.DESC else ""
        value = self.at(path)
        text = self.text_at(path)
        kind = f"jsonb_typeof({value})"
        rank = (f"CASE WHEN {value} IS NULL THEN 0 WHEN {kind} = 'null' THEN 1 "
                f"WHEN {kind} = 'boolean' THEN 2 WHEN {kind} = 'number' THEN 3 "
                f"WHEN {kind} = 'string' THEN 4 ELSE 5 END")
        return [f"{term}{direction}" for term in (
            rank,
            f"CASE WHEN {kind} = 'boolean' THEN {text}::boolean END",
            f"CASE WHEN {kind} = 'number' THEN {text}::numeric END",
            f"CASE WHEN {kind} = 'string' THEN {text} COLLATE \"C\" END",
            f"CASE WHEN {kind} IN ('object', 'array') THEN {value}::text END",
        )]


def compile_query(query: Query, *, table: str, live: str) -> CompiledQuery:
    """The statement selecting ``key, raw, etag`` of the page ``query`` asks for.

    ``live`` is the SQL condition of unexpired rows; JSON documents only (``value`` not NULL).
    """
    build = _Builder("value")
    where = [live, "value IS NOT NULL",
             f"starts_with(key, {build.arg(query.key_prefix, 'text')})"]
    if query.filter is not None:
        where.append(build.condition(query.filter))
    order: list[str] = []
    for sort_key in query.sort:
        order += build.order_terms(sort_key.path, sort_key.order)
    order.append('key COLLATE "C"')
    offset = decode_offset_token(query.token)
    sql = (f"SELECT key, raw, etag FROM {table} WHERE {' AND '.join(where)} "
           f"ORDER BY {', '.join(order)}")
    if query.limit:
        sql += f" LIMIT {build.arg(query.limit + 1, 'bigint')}"
    if offset:
        sql += f" OFFSET {build.arg(offset, 'bigint')}"
    return CompiledQuery(sql, build.args, offset, query.limit)
