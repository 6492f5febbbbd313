"""Compile a state :class:`~pylotto.components.state.query.Query` to one SQL statement, for
PostgreSQL (JSONB) and MySQL / MariaDB (JSON).

The SQL gives the results of the reference semantics in :mod:`pylotto.components.state.query`:

- ``EQ`` / ``IN`` are type-exact (``1`` never equals ``"1"``, ``true`` never equals ``1``;
  ``1`` equals ``1.0``); a missing path matches nothing.
- Ranges compare numbers with numbers and strings with strings (code point order, as Python
  compares ``str``); any other type never matches.
- Sorting ranks JSON types as the reference does (missing < null < booleans < numbers <
  strings < objects/arrays), then by value within the type, then by key (ties keep key order in
  both directions).
- Paging is ``LIMIT n + 1 OFFSET token``: the extra row tells whether another page exists.

A dialect says how to read a path of the document column, how parameters are written and how
each type test reads; the builder does the rest.
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
    Scalar,
    decode_offset_token,
)

_SQL_OPS = {RangeOp.GT: ">", RangeOp.GTE: ">=", RangeOp.LT: "<", RangeOp.LTE: "<="}


@dataclass
class CompiledQuery:
    """``sql`` with placeholders for ``args``; ``offset`` is where the page starts."""

    sql: str
    args: list[Any] = field(default_factory=list)
    offset: int = 0
    limit: int = 0


class _Builder:
    """Collects parameters; subclasses write the dialect's expressions."""

    key_column = "key"
    binary_collation = 'COLLATE "C"'

    def __init__(self) -> None:
        self.args: list[Any] = []

    def arg(self, value: Any, cast: str = "") -> str:
        raise NotImplementedError

    def kind(self, path: Path) -> str:
        """SQL of the JSON type name at ``path`` (NULL when missing), in the dialect's words."""
        raise NotImplementedError

    def text(self, path: Path) -> str:
        """SQL of the value at ``path`` as text (strings unquoted)."""
        raise NotImplementedError

    def number(self, path: Path) -> str:
        raise NotImplementedError

    def is_type(self, path: Path, family: str) -> str:
        """SQL true when the value at ``path`` is of ``family``: string, number, boolean,
        null, compound."""
        raise NotImplementedError

    def starts_with(self, prefix: str) -> str:
        raise NotImplementedError

    def equals(self, path: Path, value: Scalar) -> str:
        if value is None:
            return self.is_type(path, "null")
        if isinstance(value, bool):
            return (f"({self.is_type(path, 'boolean')} AND "
                    f"{self.text(path)} = {self.arg('true' if value else 'false')})")
        if isinstance(value, str):
            return (f"({self.is_type(path, 'string')} AND {self.text(path)} "
                    f"{self.binary_collation} = {self.arg(value)})")
        return (f"({self.is_type(path, 'number')} AND "
                f"{self.number(path)} = {self.arg(str(value), 'numeric')})")

    def condition(self, flt: Filter) -> str:
        if isinstance(flt, And | Or):
            joiner = " AND " if isinstance(flt, And) else " OR "
            return "(" + joiner.join(self.condition(child) for child in flt.filters) + ")"
        if isinstance(flt, Eq):
            return self.equals(flt.path, flt.value)
        if isinstance(flt, In):
            return "(" + " OR ".join(self.equals(flt.path, v) for v in flt.values) + ")"
        return self._range(flt)

    def _range(self, flt: Range) -> str:
        op = _SQL_OPS[flt.op]
        if isinstance(flt.value, str):
            return (f"({self.is_type(flt.path, 'string')} AND {self.text(flt.path)} "
                    f"{self.binary_collation} {op} {self.arg(flt.value)})")
        return (f"({self.is_type(flt.path, 'number')} AND "
                f"{self.number(flt.path)} {op} {self.arg(str(flt.value), 'numeric')})")

    def order_terms(self, path: Path, order: Order) -> list[str]:
        direction = " DESC" if order is Order.DESC else ""
        rank = (f"CASE WHEN {self.kind(path)} IS NULL THEN 0 "
                f"WHEN {self.is_type(path, 'null')} THEN 1 "
                f"WHEN {self.is_type(path, 'boolean')} THEN 2 "
                f"WHEN {self.is_type(path, 'number')} THEN 3 "
                f"WHEN {self.is_type(path, 'string')} THEN 4 ELSE 5 END")
        return [f"{term}{direction}" for term in (
            rank,
            f"CASE WHEN {self.is_type(path, 'boolean')} THEN {self.text(path)} END",
            f"CASE WHEN {self.is_type(path, 'number')} THEN {self.number(path)} END",
            f"CASE WHEN {self.is_type(path, 'string')} THEN {self.text(path)} "
            f"{self.binary_collation} END",
            f"CASE WHEN {self.is_type(path, 'compound')} THEN {self.text(path)} END",
        )]

    def compile(self, query: Query, *, table: str, live: str, document: str) -> CompiledQuery:
        """The statement selecting ``key, value bytes, etag`` of the page ``query`` asks for;
        ``live`` is the SQL condition of unexpired rows, ``document`` of rows holding JSON."""
        where = [live, document, self.starts_with(query.key_prefix)]
        if query.filter is not None:
            where.append(self.condition(query.filter))
        order: list[str] = []
        for sort_key in query.sort:
            order += self.order_terms(sort_key.path, sort_key.order)
        order.append(f"{self.key_column} {self.binary_collation}")
        offset = decode_offset_token(query.token)
        sql = (f"{self.select} FROM {table} WHERE {' AND '.join(where)} "
               f"ORDER BY {', '.join(order)}")
        if query.limit:
            sql += f" LIMIT {self.arg(query.limit + 1, 'bigint')}"
        if offset:
            sql += f" OFFSET {self.arg(offset, 'bigint')}"
        return CompiledQuery(sql, self.args, offset, query.limit)

    select = "SELECT key, raw, etag"


class PostgresQueryBuilder(_Builder):
    """JSONB column ``value``; ``$n::type`` parameters."""

    _TYPES = {"string": "= 'string'", "number": "= 'number'", "boolean": "= 'boolean'",
              "null": "= 'null'", "compound": "IN ('object', 'array')"}

    def arg(self, value: Any, cast: str = "text") -> str:
        self.args.append(value)
        return f"${len(self.args)}::{cast}"

    def _path(self, path: Path) -> str:
        return self.arg(list(path), "text[]")

    def kind(self, path: Path) -> str:
        return f"jsonb_typeof(value #> {self._path(path)})"

    def text(self, path: Path) -> str:
        return f"(value #>> {self._path(path)})"

    def number(self, path: Path) -> str:
        return f"(value #>> {self._path(path)})::numeric"

    def is_type(self, path: Path, family: str) -> str:
        return f"{self.kind(path)} {self._TYPES[family]}"

    def starts_with(self, prefix: str) -> str:
        return f"starts_with(key, {self.arg(prefix)})"


class MySQLQueryBuilder(_Builder):
    """JSON column ``doc`` (MariaDB: JSON text with ``json_valid``); ``%s`` parameters."""

    key_column = "id"
    binary_collation = "COLLATE utf8mb4_bin"
    select = "SELECT id, value, eTag"
    _TYPES = {"string": "= 'STRING'", "number": "IN ('INTEGER', 'DOUBLE', 'DECIMAL')",
              "boolean": "= 'BOOLEAN'", "null": "= 'NULL'", "compound": "IN ('OBJECT', 'ARRAY')"}

    def arg(self, value: Any, cast: str = "") -> str:
        self.args.append(float(value) if cast == "numeric" else value)
        return "%s"

    def _path(self, path: Path) -> str:
        return self.arg("$" + "".join("." + json.dumps(part) for part in path))

    def kind(self, path: Path) -> str:
        return f"JSON_TYPE(JSON_EXTRACT(doc, {self._path(path)}))"

    def text(self, path: Path) -> str:
        return f"JSON_UNQUOTE(JSON_EXTRACT(doc, {self._path(path)}))"

    def number(self, path: Path) -> str:
        return f"(JSON_EXTRACT(doc, {self._path(path)}) + 0e0)"

    def is_type(self, path: Path, family: str) -> str:
        return f"{self.kind(path)} {self._TYPES[family]}"

    def starts_with(self, prefix: str) -> str:
        return f"LEFT(id, CHAR_LENGTH({self.arg(prefix)})) = {self.arg(prefix)}"

    def compile(self, query: Query, *, table: str, live: str, document: str) -> CompiledQuery:
        compiled = super().compile(query, table=table, live=live, document=document)
        if compiled.offset and not compiled.limit:  # MySQL: OFFSET needs a LIMIT
            compiled.sql = compiled.sql.replace(" OFFSET %s", " LIMIT 18446744073709551615 "
                                                "OFFSET %s")
        return compiled
