"""What every PostgreSQL-backed component shares: connection settings, the asyncpg pool, call
timeouts and the mapping of driver errors to pylotto errors.

Metadata (Dapr's names): ``connectionString`` — a libpq URL (``postgres://user:pw@host:5432/db``)
or a key=value DSN (``host=127.0.0.1 port=5432 user=postgres dbname=test``), either naming
several hosts as libpq does (``postgres://user@h1:5432,h2:5433/db``, ``host=h1,h2
port=5432,5433``), tried in order on every new connection, with libpq's
``target_session_attrs`` (``any``, ``read-write``, ``read-only``, ``primary``, ``standby``,
``prefer-standby``) saying which of them will do (asyncpg checks it as libpq does); ``timeout`` (a
duration, default 10s) or ``timeoutInSeconds`` (Dapr v1's spelling; wins when both are given) —
the limit of every call, connecting included; ``maxConns`` (pool size, default 10) and
``minConns`` (connections kept open, default 0), ``connectionMaxIdleTime`` (an idle pooled
connection is closed after this long, default 5m; 0: never).

asyncpg is imported only when a pool is built, so importing this module costs nothing.
A connection that drops is discarded by the pool and replaced on the next call: after an outage
the first call fails with Unavailable, and calls succeed again as soon as the server is back.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, field_validator

from pylotto.components.errors import DriverErrors
from pylotto.core.errors import PylottoError, Unavailable
from pylotto.core.metadata import ComponentSettings, Duration

DEFAULT_TIMEOUT = 10.0
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$"
"""Pattern of a table name setting (spliced into SQL): ``name`` or ``schema.name``."""

T = TypeVar("T")

_DSN_KEYS = {
    "host": "host", "hostaddr": "host", "port": "port", "user": "user", "password": "password",
    "dbname": "database", "database": "database", "sslmode": "ssl",
    "connect_timeout": "connect_timeout", "application_name": "application_name",
    "target_session_attrs": "target_session_attrs",
}
SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
"""libpq's ``target_session_attrs`` values (asyncpg takes the same)."""


class PostgresSettings(ComponentSettings):
    """Connection keys shared by every PostgreSQL component (mixed into each one's settings)."""

    connection_string: str = Field(alias="connectionString", min_length=1)
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)
    timeout_in_seconds: float | None = Field(None, alias="timeoutInSeconds", gt=0)
    max_conns: int = Field(10, alias="maxConns", ge=1)
    min_conns: int = Field(0, alias="minConns", ge=0)
    connection_max_idle_time: Duration = Field(300.0, alias="connectionMaxIdleTime")

    @field_validator("connection_string")
    @classmethod
    def _parses(cls, value: str) -> str:
        connect_arguments(value)
        return value

    @property
    def call_timeout(self) -> float:
        """Seconds every backend call may take."""
        return self.timeout_in_seconds if self.timeout_in_seconds is not None else self.timeout


def quote_table(name: str) -> str:
    """``"name"`` or ``"schema"."name"`` (names are checked against TABLE_NAME beforehand)."""
    return ".".join(f'"{part}"' for part in name.split("."))


def connect_arguments(connection_string: str) -> dict[str, Any]:
    """asyncpg connect keywords for a libpq URL or key=value DSN; ValueError when malformed."""
    text = connection_string.strip()
    if re.match(r"^postgres(ql)?://", text):
        for attrs in parse_qs(urlsplit(text).query).get("target_session_attrs", []):
            _session_attrs(attrs)
        return {"dsn": text}
    arguments: dict[str, Any] = {}
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"connectionString is not a valid DSN: {exc}") from None
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ValueError(
                f"connectionString part {word!r} is not key=value "
                "(expected a postgres:// URL or 'host=... port=... user=... dbname=...')"
            )
        target = _DSN_KEYS.get(key.lower())
        if target is None:
            continue  # libpq options asyncpg has no use for
        if target == "host":
            hosts = [h.strip() for h in value.split(",")]
            arguments[target] = hosts if len(hosts) > 1 else hosts[0]
        elif target == "port":
            ports = [p.strip() for p in value.split(",")]
            if not all(p.isdigit() for p in ports):
                raise ValueError(f"connectionString port {value!r} is not a number (or "
                                 "numbers separated by ',')")
            arguments[target] = [int(p) for p in ports] if len(ports) > 1 else int(ports[0])
        elif target == "connect_timeout":
            continue  # every call has its own timeout
        elif target == "application_name":
            arguments.setdefault("server_settings", {})["application_name"] = value
        elif target == "target_session_attrs":
            arguments[target] = _session_attrs(value)
        else:
            arguments[target] = value
    host_count = len(h) if isinstance(h := arguments.get("host"), list) else 1
    if isinstance(p := arguments.get("port"), list) and len(p) != host_count:
        raise ValueError(f"connectionString names {len(p)} ports for {host_count} hosts "
                         "(give one port for all, or one per host)")
    if not arguments:
        raise ValueError("connectionString is empty")
    return arguments


def _session_attrs(value: str) -> str:
    if value not in SESSION_ATTRS:
        raise ValueError(f"connectionString target_session_attrs {value!r}: expected one of "
                         f"{', '.join(SESSION_ATTRS)}")
    return value


ERRORS = DriverErrors(
    "postgresql",
    connection_errors=(
        "builtins:OSError", "builtins:TimeoutError", "builtins:ConnectionError",
        *(f"asyncpg.exceptions:{name}" for name in (
            "ConnectionDoesNotExistError", "PostgresConnectionError",  # 08xxx
            "CannotConnectNowError",  # 57P03: starting up, shutting down, in recovery
            "TooManyConnectionsError",  # 53300
            "OutOfMemoryError",  # 53200
            "AdminShutdownError",  # 57P01: fast shutdown, pg_terminate_backend
            "CrashShutdownError",  # 57P02: another backend crashed, the server restarts
            "IdleSessionTimeoutError",  # 57P05: idle_session_timeout closed the session
            "IdleInTransactionSessionTimeoutError",  # 25P03
            "ReadOnlySQLTransactionError",  # 25006: a write reached a standby (failover)
            "InterfaceError", "InternalClientError", "QueryCanceledError")),
    ),
)
"""asyncpg's errors meaning the server is unreachable, gone, not ready (starting, shutting
down, a standby during a failover) or too slow are Unavailable, the rest Internal."""
map_error = ERRORS.map
is_connection_error = ERRORS.is_connection_error


class PostgresClient:
    """An asyncpg pool with a timeout on every call and pylotto errors out.

    ``what`` names the component in every message (``"state store orders"``).
    """

    def __init__(self, settings: PostgresSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.call_timeout
        self._arguments = connect_arguments(settings.connection_string)
        self._pool: Any = None

    async def open(self, schema: list[str] | None = None) -> None:
        """Build the pool and run ``schema`` (DDL, idempotent) in one transaction."""
        import asyncpg

        try:
            async with asyncio.timeout(self.timeout):
                self._pool = await asyncpg.create_pool(
                    **self._arguments,
                    min_size=min(self.settings.min_conns, self.settings.max_conns),
                    max_size=self.settings.max_conns,
                    timeout=self.timeout,
                    command_timeout=self.timeout,
                    max_inactive_connection_lifetime=self.settings.connection_max_idle_time,
                )
        except Exception as exc:
            raise map_error(exc, self.what) from exc
        if schema:
            await self.run_schema(schema)

    async def run_schema(self, statements: list[str]) -> None:
        """Run DDL statements in one transaction, serialised by an advisory lock so that several
        sidecars creating the same tables at once do not collide."""

        async def create(conn: Any) -> None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('pylotto-schema'))")
                for statement in statements:
                    await conn.execute(statement)

        await self.call(create)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                async with asyncio.timeout(self.timeout):
                    await pool.close()
            except (Exception, TimeoutError):
                pool.terminate()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A pooled connection for a block that must finish within the timeout."""
        if self._pool is None:
            raise Unavailable(f"{self.what} is not open")
        try:
            async with asyncio.timeout(self.timeout), self._pool.acquire() as conn:
                yield conn
        except PylottoError:
            raise
        except Exception as exc:
            raise map_error(exc, self.what) from exc

    async def call(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work(connection)`` within the timeout; driver errors become pylotto errors."""
        async with self.connection() as conn:
            return await work(conn)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        result: list[Any] = await self.call(lambda conn: conn.fetch(sql, *args))
        return result

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self.call(lambda conn: conn.fetchrow(sql, *args))

    async def execute(self, sql: str, *args: Any) -> str:
        result: str = await self.call(lambda conn: conn.execute(sql, *args))
        return result

    async def ping(self) -> None:
        await self.fetchrow("SELECT 1")

    async def connect_single(self) -> Any:
        """A connection outside the pool (for LISTEN); the caller closes it."""
        import asyncpg

        try:
            async with asyncio.timeout(self.timeout):
                return await asyncpg.connect(**self._arguments, timeout=self.timeout)
        except Exception as exc:
            raise map_error(exc, self.what) from exc
