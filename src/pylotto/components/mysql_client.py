"""What every MySQL / MariaDB component shares: connection settings, the aiomysql pool, call
timeouts and the mapping of driver errors to pylotto errors.

Metadata (Dapr's names): ``connectionString`` — Go's DSN as Dapr takes it
(``user:password@tcp(host:port)/database?param=value``) or a URL
(``mysql://user:password@host:port/database``); ``timeout`` (a duration, default 10s) or
``timeoutInSeconds`` — the limit of every call, connecting included; ``maxConns`` (pool size,
default 10), ``minConns`` (connections kept open, default 0).

aiomysql is imported only when the pool is built. A connection that drops is discarded by the
pool: after an outage the first call fails with Unavailable and calls succeed again as soon as
the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

from pylotto.errors import Internal, PylottoError, Unavailable
from pylotto.metadata import ComponentSettings, Duration

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
CONNECTION_ERRORS = frozenset({2002, 2003, 2006, 2013, 2055, 1040, 1053})
"""Client/server codes meaning the server is unreachable, gone or refusing connections."""

_GO_DSN = re.compile(
    r"^(?:(?P<user>[^:@/]*)(?::(?P<password>[^@]*))?@)?"
    r"(?:(?P<net>tcp|unix)\((?P<address>[^)]*)\))?"
    r"/(?P<database>[^?]*)(?:\?(?P<params>.*))?$"
)


class MySQLSettings(ComponentSettings):
    """Connection keys shared by every MySQL component (mixed into each one's settings)."""

    connection_string: str = Field(alias="connectionString", min_length=1)
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)
    timeout_in_seconds: float | None = Field(None, alias="timeoutInSeconds", gt=0)
    max_conns: int = Field(10, alias="maxConns", ge=1)
    min_conns: int = Field(0, alias="minConns", ge=0)

    @field_validator("connection_string")
    @classmethod
    def _parses(cls, value: str) -> str:
        connect_arguments(value)
        return value

    @property
    def call_timeout(self) -> float:
        return self.timeout_in_seconds if self.timeout_in_seconds is not None else self.timeout


def connect_arguments(connection_string: str) -> dict[str, Any]:
    """aiomysql connect keywords for a Go DSN or a mysql:// URL; ValueError when malformed."""
    text = connection_string.strip()
    if text.startswith("mysql://"):
        url = urlsplit(text)
        database = url.path.lstrip("/")
        if not url.hostname or not database:
            raise ValueError("connectionString URL needs a host and a database: "
                             "mysql://user:password@host:3306/database")
        return {"host": url.hostname, "port": url.port or 3306,
                "user": unquote(url.username or "root"),
                "password": unquote(url.password or ""), "db": database}
    match = _GO_DSN.match(text)
    if match is None or not match["database"]:
        raise ValueError(f"connectionString {_masked(text)!r} is not a MySQL DSN "
                         "(expected user:password@tcp(host:3306)/database)")
    arguments: dict[str, Any] = {"user": match["user"] or "root",
                                 "password": match["password"] or "", "db": match["database"]}
    address = match["address"] or "127.0.0.1:3306"
    if match["net"] == "unix":
        arguments["unix_socket"] = address
    else:
        host, _, port = address.rpartition(":")
        if not host:
            host, port = address, "3306"
        if not port.isdigit():
            raise ValueError(f"connectionString port {port!r} is not a number")
        arguments["host"], arguments["port"] = host or "127.0.0.1", int(port)
    return arguments


def _masked(dsn: str) -> str:
    return re.sub(r":[^:@/]*@", ":***@", dsn, count=1)


def map_error(exc: BaseException, what: str) -> PylottoError:
    """Unavailable for connection problems and timeouts, Internal for anything else."""
    import pymysql

    if isinstance(exc, PylottoError):
        return exc
    if isinstance(exc, TimeoutError):
        return Unavailable(f"{what}: mysql did not answer in time")
    if isinstance(exc, OSError | ConnectionError | pymysql.err.InterfaceError):
        return Unavailable(f"{what}: mysql unreachable: {exc}")
    if isinstance(exc, pymysql.err.OperationalError) and exc.args and \
            exc.args[0] in CONNECTION_ERRORS:
        return Unavailable(f"{what}: mysql unreachable: {exc.args[-1]}")
    return Internal(f"{what}: mysql: {exc}")


class MySQLClient:
    """An aiomysql pool (autocommit) with a timeout on every call and pylotto errors out."""

    def __init__(self, settings: MySQLSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.call_timeout
        self._arguments = connect_arguments(settings.connection_string)
        self._pool: Any = None

    async def open(self, schema: list[str] | None = None) -> None:
        """Build the pool and run ``schema`` (idempotent DDL) under a named lock, so several
        sidecars creating the same tables at once do not collide."""
        import aiomysql

        try:
            async with asyncio.timeout(self.timeout):
                self._pool = await aiomysql.create_pool(
                    **self._arguments, minsize=min(self.settings.min_conns,
                                                   self.settings.max_conns),
                    maxsize=self.settings.max_conns, autocommit=True, charset="utf8mb4",
                    connect_timeout=self.timeout, pool_recycle=300,
                )
        except Exception as exc:
            raise map_error(exc, self.what) from exc
        if schema:
            async def create(cursor: Any) -> None:
                await cursor.execute("SELECT GET_LOCK('pylotto-schema', %s)", (self.timeout,))
                try:
                    with warnings.catch_warnings():  # "table already exists" notes
                        warnings.simplefilter("ignore")
                        for statement in schema:
                            await cursor.execute(statement)
                finally:
                    await cursor.execute("DO RELEASE_LOCK('pylotto-schema')")

            await self.call(create)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            try:
                await asyncio.wait_for(pool.wait_closed(), self.timeout)
            except (Exception, TimeoutError):
                pool.terminate()

    @asynccontextmanager
    async def cursor(self, *, transaction: bool = False) -> AsyncIterator[Any]:
        """A cursor on a pooled connection for a block that must finish within the timeout;
        with ``transaction``, the block is one transaction (rolled back on any error)."""
        if self._pool is None:
            raise Unavailable(f"{self.what} is not open")
        conn: Any = None
        try:
            async with asyncio.timeout(self.timeout):
                conn = await self._pool.acquire()
                async with conn.cursor() as cursor:
                    if transaction:
                        await conn.begin()
                    yield cursor
                    if transaction:
                        await conn.commit()
        except BaseException as exc:
            if conn is not None:
                await self._discard(conn, transaction)
                conn = None
            if isinstance(exc, PylottoError | asyncio.CancelledError):
                raise
            if isinstance(exc, Exception):
                raise map_error(exc, self.what) from exc
            raise
        finally:
            if conn is not None:
                self._pool.release(conn)

    async def _discard(self, conn: Any, transaction: bool) -> None:
        """Roll back and return a connection after a failed block; close it if broken."""
        if transaction:
            try:
                async with asyncio.timeout(self.timeout):
                    await conn.rollback()
            except Exception:
                conn.close()
        with contextlib.suppress(Exception):
            self._pool.release(conn)

    async def call(self, work: Callable[[Any], Awaitable[T]]) -> T:
        async with self.cursor() as cursor:
            return await work(cursor)

    async def fetchall(self, sql: str, args: Any = None) -> list[Any]:
        async def run(cursor: Any) -> list[Any]:
            await cursor.execute(sql, args)
            return list(await cursor.fetchall())

        return await self.call(run)

    async def execute(self, sql: str, args: Any = None) -> int:
        async def run(cursor: Any) -> int:
            return int(await cursor.execute(sql, args))

        return await self.call(run)

    async def ping(self) -> None:
        await self.fetchall("SELECT 1")
