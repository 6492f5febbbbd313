"""``bindings.mysql``: SQL on MySQL or MariaDB (Dapr's binding).

Operations ``exec``, ``query`` and ``close`` with request metadata ``sql`` and ``params`` (see
:mod:`pylotto.components.bindings.sql`); ``?`` in ``sql`` (outside quotes and comments) are
the params, as Go's ``database/sql``. A JSON object or array as a param is refused, as Go's
driver refuses a map or a slice.

``query`` returns a JSON array with one object per row, column name → value, as
components-contrib's (go-sql-driver 1.8 scan types, Go's ``encoding/json``): integers and
floats as numbers; ``DECIMAL``, ``TIME`` and every text type (``VARCHAR``, ``TEXT``, ``ENUM``,
``SET``...) as strings; binary types (``BLOB``, ``VARBINARY``, ``BIT``) and MySQL's ``JSON``
type in base64; ``DATE``/``DATETIME``/``TIMESTAMP`` in RFC 3339 (UTC, as ``parseTime`` with
``loc=UTC``). A ``NULL`` column is left out of its row's object; no row at all is ``null``.

Metadata (Dapr's): ``url`` (required) — Go's DSN ``user:password@tcp(host:port)/database``
(the database may be left out), see :mod:`pylotto.components._backends.mysql_client`;
``maxOpenConns`` (pool size, default 10); ``maxIdleConns``, ``connMaxLifetime``,
``connMaxIdleTime`` are read and checked (the pool keeps no idle limit of its own and renews a
connection after 5 minutes); ``timeout`` (pylotto's: the limit of every call, default 20s).
"""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from pylotto.components._backends.mysql_client import (
    MySQLClient,
    MySQLSettings,
    connect_arguments,
)
from pylotto.components.base import ComponentContext
from pylotto.components.bindings.base import BindingSettings
from pylotto.components.bindings.sql import SqlBinding, rfc3339_nano
from pylotto.core.errors import InvalidArgument
from pylotto.core.gojson import go_json
from pylotto.core.metadata import Duration

BINARY_CHARSET = 63
JSON_TYPE = 245
TIME_TYPE = 11
DATE_TYPES = frozenset({7, 10, 12, 14})  # TIMESTAMP, DATE, DATETIME, NEWDATE
BYTES_TYPES = frozenset({16, 249, 250, 251, 252, 253, 254, 255})
"""BIT, the BLOBs, VAR_STRING, STRING, GEOMETRY: bytes when their charset is binary."""
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class MySQLBindingSettings(BindingSettings, MySQLSettings):
    connection_string: str = Field(alias="url", min_length=1)
    max_conns: int = Field(10, alias="maxOpenConns", ge=1)
    max_idle_conns: int = Field(0, alias="maxIdleConns", ge=0)
    conn_max_lifetime: Duration = Field(0.0, alias="connMaxLifetime", ge=0)
    conn_max_idle_time: Duration = Field(0.0, alias="connMaxIdleTime", ge=0)
    timeout: Duration = Field(20.0, alias="timeout", gt=0)

    @field_validator("connection_string")
    @classmethod
    def _parses(cls, value: str, info: ValidationInfo) -> str:
        connect_arguments(value)  # the binding needs no database
        return value


def placeholders(sql: str) -> str:
    """``sql`` with Go's ``?`` placeholders as the driver's ``%s`` and every ``%`` doubled;
    quotes, backquotes and comments are kept as they are (a ``?`` there is no placeholder)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"`":
            end = i + 1
            while end < n and sql[end] != char:
                end += 2 if sql[end] == "\\" and char != "`" else 1
            out.append(sql[i:end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i) or char == "#":
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        else:
            out.append("%s" if char == "?" else "%%" if char == "%" else char)
            i += 1
    return "".join(out)


def check_params(params: list[Any]) -> tuple[Any, ...]:
    for number, value in enumerate(params, 1):
        if isinstance(value, dict | list):
            kind = "map[string]interface {}, a map" if isinstance(value, dict) \
                else "[]interface {}, a slice"
            raise InvalidArgument(f"sql: converting argument ${number} type: unsupported type "
                                  f"{kind}")
    return tuple(params)


def mysql_time(value: timedelta, decimals: int) -> str:
    """A ``TIME`` as the server writes it (``-01:02:03``, ``838:59:59.500``)."""
    micros = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    seconds, fraction = divmod(micros, 1_000_000)
    text = f"{sign}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if 0 < decimals <= 6:
        text += "." + f"{fraction:06d}"[:decimals]
    return text


def to_json(value: Any, field: Any) -> Any:
    """A column value as components-contrib's MySQL binding marshals it."""
    type_code, charset = field.type_code, field.charsetnr
    if type_code == JSON_TYPE:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode()
    if type_code in DATE_TYPES:
        if isinstance(value, datetime):
            return rfc3339_nano(value)
        if isinstance(value, date):
            return rfc3339_nano(datetime(value.year, value.month, value.day))
        return GO_ZERO_TIME  # a zero date ('0000-00-00')
    if type_code == TIME_TYPE and isinstance(value, timedelta):
        return mysql_time(value, field.scale)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes | bytearray):
        if type_code in BYTES_TYPES and charset == BINARY_CHARSET:
            return base64.b64encode(bytes(value)).decode()
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, set):
        return ",".join(sorted(value))
    return value


class MySQLBinding(SqlBinding):
    Settings = MySQLBindingSettings

    def __init__(self, name: str, settings: MySQLBindingSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = MySQLClient(settings, f"binding {name}")

    async def init(self) -> None:
        await self.client.open()

    async def ping(self) -> None:
        await self.client.ping()

    async def close_pool(self) -> None:
        await self.client.close()

    async def run_exec(self, sql: str, params: list[Any]) -> int:
        statement, args = placeholders(sql), check_params(params)

        async def run(cursor: Any) -> int:
            try:
                count = int(await cursor.execute(statement, args))
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"sql: {exc} ({len(args)} params given)") from None
            # a statement with rows (SELECT): its OK packet counts none, as go-sql-driver's
            return 0 if cursor.description else count

        return await self.client.call(run)

    async def run_query(self, sql: str, params: list[Any]) -> bytes:
        statement, args = placeholders(sql), check_params(params)

        async def run(cursor: Any) -> tuple[list[Any], list[Any]]:
            try:
                await cursor.execute(statement, args)
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(f"sql: {exc} ({len(args)} params given)") from None
            result = cursor._result  # the column descriptions with their charsets
            fields = list(result.fields) if result is not None and result.fields else []
            return fields, list(await cursor.fetchall())

        fields, rows = await self.client.call(run)
        if not rows:
            return b"null"
        objects = [{field.name: to_json(value, field)
                    for field, value in zip(fields, row, strict=True) if value is not None}
                   for row in rows]
        return go_json(objects).encode()
