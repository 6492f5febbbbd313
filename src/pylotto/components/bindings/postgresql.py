"""``bindings.postgresql`` (alias ``bindings.postgres``): SQL on PostgreSQL (Dapr's binding).

Operations ``exec``, ``query`` and ``close`` with request metadata ``sql`` and ``params`` (see
:mod:`pylotto.components.bindings.sql`); ``$1``, ``$2``... in ``sql`` are the params. ``exec``
without params runs over the simple protocol (several statements allowed; ``rows-affected``
is that of the last), as pgx does; with params, and ``query`` always, as one prepared
statement. A JSON param is converted to the type the server expects for it where the
conversion is exact (``5`` for an ``int8``, ``"2026-12-02T10:00:00Z"`` for a ``timestamptz``,
an object for a ``jsonb``...), as pgx encodes Go values.

``query`` returns a JSON array with one array of column values per row, each value as pgx's
``rows.Values()`` marshals it with Go's ``encoding/json``: numbers, strings, booleans and
``null`` as such; ``numeric`` as a JSON number with its scale (``12.50``); ``bytea`` in base64;
``json``/``jsonb`` decoded; ``timestamp``/``date`` in RFC 3339 (UTC), ``timestamptz`` in the
sidecar's local zone; ``uuid`` as an array of its 16 bytes; ``time`` as
``{"Microseconds": n, "Valid": true}``; ``interval`` as
``{"Microseconds": n, "Days": d, "Months": 0, "Valid": true}``; arrays as JSON arrays.

Connection metadata: the shared PostgreSQL keys (``connectionString``, ``timeout`` default 20s
as Dapr's binding, ``maxConns``..., :mod:`pylotto.components._backends.postgres_client`).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import Field

from pylotto.components._backends.postgres_client import PostgresClient, PostgresSettings
from pylotto.components.base import ComponentContext
from pylotto.components.bindings.base import BindingSettings
from pylotto.components.bindings.sql import SqlBinding, rfc3339_nano
from pylotto.core.errors import Internal, InvalidArgument
from pylotto.core.gojson import GoStruct, RawNumber, float32, go_json
from pylotto.core.metadata import Duration

INT_TYPES = frozenset({"int2", "int4", "int8", "oid"})
FLOAT_TYPES = frozenset({"float4", "float8"})
TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "unknown"})
JSON_TYPES = frozenset({"json", "jsonb"})
COUNTED_COMMANDS = frozenset({"INSERT", "UPDATE", "DELETE", "SELECT", "MERGE", "MOVE", "FETCH",
                              "COPY"})
"""Command tags whose last number is a row count (pgx's ``CommandTag.RowsAffected``)."""


class PostgresBindingSettings(BindingSettings, PostgresSettings):
    timeout: Duration = Field(20.0, alias="timeout", ge=1)


def rows_affected(status: str) -> int:
    """The row count of a command tag (``INSERT 0 3`` → 3, ``CREATE TABLE`` → 0)."""
    words = status.split()
    if words and words[0] in COUNTED_COMMANDS and words[-1].isdigit():
        return int(words[-1])
    return 0


def to_param(value: Any, type_name: str) -> Any:
    """A JSON value as the driver needs it for a parameter of type ``type_name``."""
    if value is None:
        return None
    try:
        if type_name in INT_TYPES:
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                return int(value.strip())
        elif type_name in FLOAT_TYPES:
            if isinstance(value, int | str) and not isinstance(value, bool):
                return float(value)
        elif type_name == "numeric":
            if isinstance(value, int | float | str) and not isinstance(value, bool):
                return Decimal(str(value))
        elif type_name in TEXT_TYPES:
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, int | float):
                return str(value)
        elif type_name == "bool" and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("t", "true", "1", "yes", "on"):
                return True
            if lowered in ("f", "false", "0", "no", "off"):
                return False
        elif type_name in JSON_TYPES:
            return value if isinstance(value, str) else json.dumps(value)
        elif type_name in ("timestamptz", "timestamp") and isinstance(value, str):
            when = datetime.fromisoformat(value)
            if type_name == "timestamptz" and when.tzinfo is None:
                return when.replace(tzinfo=UTC)
            if type_name == "timestamp" and when.tzinfo is not None:
                return when.replace(tzinfo=None)
            return when
        elif type_name == "date" and isinstance(value, str):
            return date.fromisoformat(value[:10])
        elif type_name == "uuid" and isinstance(value, str):
            return uuid.UUID(value)
        elif type_name == "bytea" and isinstance(value, str):
            return value.encode()
    except (ValueError, InvalidOperation):
        pass  # the driver refuses it, naming the argument
    return value


def to_json(value: Any, type_name: str = "") -> Any:
    """A column value as pgx's ``rows.Values()`` gives it to Go's ``encoding/json``."""
    if value is None or (isinstance(value, bool | int | str) and type_name not in JSON_TYPES):
        return value
    if type_name in JSON_TYPES and isinstance(value, str):
        return json.loads(value)
    if isinstance(value, float):  # NaN and infinities fail the marshalling, as in Go
        return float32(value) if type_name == "float4" else value
    if isinstance(value, Decimal):
        if value.is_nan():
            return "NaN"
        if value.is_infinite():
            return "Infinity" if value > 0 else "-Infinity"
        return RawNumber(format(value, "f"))
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return rfc3339_nano(value.replace(tzinfo=UTC))
        return rfc3339_nano(value.astimezone())
    if isinstance(value, date):
        return rfc3339_nano(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, time):
        if value.tzinfo is not None:
            return value.isoformat()
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
        return GoStruct(Microseconds=micros + value.microsecond, Valid=True)
    if isinstance(value, timedelta):
        return GoStruct(Microseconds=value.seconds * 1_000_000 + value.microseconds,
                        Days=value.days, Months=0, Valid=True)
    if isinstance(value, uuid.UUID):
        return list(value.bytes)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(ipaddress.ip_interface(value))
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface
                  | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    element = type_name[1:] if type_name.startswith("_") else ""
    if isinstance(value, list | tuple):
        return [to_json(item, element) for item in value]
    return str(value)


class PostgresBinding(SqlBinding):
    Settings = PostgresBindingSettings

    def __init__(self, name: str, settings: PostgresBindingSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = PostgresClient(settings, f"binding {name}")

    async def init(self) -> None:
        await self.client.open()

    async def ping(self) -> None:
        await self.client.ping()

    async def close_pool(self) -> None:
        await self.client.close()

    async def run_exec(self, sql: str, params: list[Any]) -> int:
        if not params:
            return rows_affected(await self.client.execute(sql))

        async def run(conn: Any) -> str:
            statement = await conn.prepare(sql)
            await self._fetch(statement, params)
            status: str = statement.get_statusmsg()
            return status

        return rows_affected(await self.client.call(run))

    async def run_query(self, sql: str, params: list[Any]) -> bytes:
        async def run(conn: Any) -> tuple[list[str], list[Any]]:
            statement = await conn.prepare(sql)
            rows = await self._fetch(statement, params)
            return [a.type.name for a in statement.get_attributes()], list(rows)

        types, rows = await self.client.call(run)
        try:
            return go_json([[to_json(value, types[i]) for i, value in enumerate(row)]
                            for row in rows]).encode()
        except ValueError as exc:
            raise Internal(f"error serializing results: {exc}") from None

    @staticmethod
    async def _fetch(statement: Any, params: list[Any]) -> list[Any]:
        """The statement's rows with ``params`` as its arguments; an argument the driver
        cannot send as the type the server expects is InvalidArgument."""
        from asyncpg.exceptions import DataError

        types = [t.name for t in statement.get_parameters()]
        if len(params) != len(types):
            raise InvalidArgument(f"error executing query: expected {len(types)} arguments, "
                                  f"got {len(params)}")
        try:
            rows: list[Any] = await statement.fetch(
                *(to_param(value, types[i]) for i, value in enumerate(params)))
        except DataError as exc:
            raise InvalidArgument(f"error executing query: {exc}") from None
        return rows
