"""What every MySQL / MariaDB component shares: connection settings, the aiomysql pool, call
timeouts and the mapping of driver errors to pylotto errors.

Metadata (Dapr's names):

- ``connectionString`` — Go's DSN, as Dapr takes it:
  ``user:password@tcp(host:port)/database?param=value&...`` (``unix(/path/to/socket)`` for a
  socket; ``tcp`` alone is ``127.0.0.1:3306``), or a URL ``mysql://user:password@host:port/db``.
  Parameters: ``tls`` (``true``, ``skip-verify``/``preferred``, ``false``), ``timeout`` (connect
  timeout, a Go duration); the other driver parameters of go-sql-driver/mysql (``parseTime``,
  ``charset``, ``loc``...) are accepted and ignored — the connection is always utf8mb4, and
  affected-row counts are always "changed rows" (the etag checks rely on it). Any other
  parameter is a session variable, set on every new connection as Go's driver does
  (``?sql_mode=%27ANSI%27`` → ``SET SESSION sql_mode = 'ANSI'``).
- ``schemaName`` — the database holding the component's tables, created when missing; default:
  the database of ``connectionString`` (one of the two must name a database).
- ``timeout`` (a duration, default 10s) or ``timeoutInSeconds`` (Dapr v1's spelling; wins when
  both are given) — the limit of every call, connecting and pool waits included.
- ``maxConns`` (pool size, default 10), ``minConns`` (connections kept open, default 0).

aiomysql is imported only when the pool is built, so importing this module costs nothing.
A connection that drops, times out or is cancelled mid-statement is closed, never reused: after
an outage the first call fails with Unavailable and calls succeed again as soon as the server is
back. The server enforces the timeout too (``innodb_lock_wait_timeout``, and MariaDB's
``max_statement_time``, set on every connection), so a write whose caller got Unavailable does
not land later — a closed connection does not stop a statement already running. Deadlocks
(InnoDB rolls the victim back) are retried within the call's timeout.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, ValidationInfo, field_validator

from pylotto.components.errors import DriverErrors, Rule
from pylotto.core.errors import Internal, PylottoError, Unavailable
from pylotto.core.metadata import ComponentSettings, Duration, parse_duration

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
MAX_KEY_LENGTH = 255
"""Characters of a key column (``VARCHAR(255)``, as Dapr's MySQL store)."""
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,56}$"
"""Pattern of table and schema names (spliced into SQL); 57 characters leave room for the
``_etag`` suffix of helper objects within MySQL's 64."""
CONNECTION_ERRORS = frozenset({
    1040,  # too many connections
    1053,  # server shutdown in progress
    1317,  # query execution was interrupted (KILL QUERY, a shutdown stopping statements)
    1836,  # running in read-only mode (MySQL 8 super_read_only: a replica after a failover)
    1927,  # connection killed (MariaDB)
    2002,  # can't connect through the socket
    2003,  # can't connect to the server
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection at handshake / system error
    4031,  # disconnected by the server for inactivity (MySQL 8)
})
"""Error codes meaning the server is unreachable, gone, refusing connections or not ready."""
READ_ONLY_OPTION = 1290
"""ER_OPTION_PREVENTS_STATEMENT: transient only when the option is ``--read-only`` (a replica
after a failover); other options (``--secure-file-priv``...) stay Internal."""
TIMEOUT_ERRORS = frozenset({
    1205,  # lock wait timeout (innodb_lock_wait_timeout)
    1969,  # max_statement_time exceeded (MariaDB)
    3024,  # max_execution_time exceeded (MySQL)
})
"""Error codes of the server giving up on a statement: the call's timeout, enforced server-side."""
DEADLOCK = 1213
SCHEMA_LOCK = "pylotto-schema"
KEY_COLLATIONS = ("utf8mb4_nopad_bin", "utf8mb4_0900_bin")
"""Binary, NO PAD collations (MariaDB, MySQL 8), best first: keys compare code point by code
point and trailing spaces count (``utf8mb4_bin`` is PAD SPACE: ``'k' = 'k '``)."""

_IGNORED_PARAMS = frozenset(p.lower() for p in (
    "allowAllFiles", "allowCleartextPasswords", "allowFallbackToPlaintext",
    "allowNativePasswords", "allowOldPasswords", "charset", "checkConnLiveness",
    "clientFoundRows", "collation", "columnsWithAlias", "compress", "connectionAttributes",
    "interpolateParams", "loc", "maxAllowedPacket", "multiStatements", "parseTime",
    "readTimeout", "rejectReadOnly", "serverPubKey", "timeTruncate", "writeTimeout",
))
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHAPE = "user:password@tcp(host:3306)/database or mysql://user:password@host:3306/database"


class MySQLSettings(ComponentSettings):
    """Connection keys shared by every MySQL component (mixed into each one's settings)."""

    schema_name: str | None = Field(None, alias="schemaName", pattern=TABLE_NAME)
    connection_string: str = Field(alias="connectionString", min_length=1)
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)
    timeout_in_seconds: float | None = Field(None, alias="timeoutInSeconds", gt=0)
    max_conns: int = Field(10, alias="maxConns", ge=1)
    min_conns: int = Field(0, alias="minConns", ge=0)

    @field_validator("connection_string")
    @classmethod
    def _parses(cls, value: str, info: ValidationInfo) -> str:
        arguments = connect_arguments(value)
        if not arguments.get("db") and not info.data.get("schema_name"):
            raise ValueError(f"names no database: expected {_SHAPE} (or set schemaName)")
        return value

    @property
    def call_timeout(self) -> float:
        """Seconds every backend call may take."""
        return self.timeout_in_seconds if self.timeout_in_seconds is not None else self.timeout


# ---- connection strings ---------------------------------------------------------------------


def connect_arguments(connection_string: str) -> dict[str, Any]:
    """aiomysql connect keywords for a Go DSN or a ``mysql://`` URL; ValueError when malformed.

    ``db`` is absent when the string names no database.
    """
    text = connection_string.strip()
    if not text:
        raise ValueError(f"connectionString is empty: expected {_SHAPE}")
    if text.lower().startswith("mysql://"):
        return _url_arguments(text)
    return _dsn_arguments(text)


def _url_arguments(text: str) -> dict[str, Any]:
    try:
        url = urlsplit(text)
        port = url.port
    except ValueError as exc:
        raise ValueError(f"connectionString is not a valid mysql:// URL: {exc}") from None
    if not url.hostname:
        raise ValueError(f"connectionString URL has no host: expected {_SHAPE}")
    arguments: dict[str, Any] = {
        "host": url.hostname, "port": port or 3306,
        "user": unquote(url.username or "root"), "password": unquote(url.password or ""),
    }
    database = unquote(url.path.lstrip("/"))
    if "/" in database:
        raise ValueError(f"connectionString URL path {url.path!r} is not /database")
    if database:
        arguments["db"] = database
    _apply_params(arguments, parse_qsl(url.query, keep_blank_values=True))
    return arguments


def _dsn_arguments(text: str) -> dict[str, Any]:
    """Go's ``[user[:password]@][net[(address)]]/dbname[?params]``, split as go-sql-driver's
    ParseDSN does: the last ``/`` starts the database, the last ``@`` before it ends the
    credentials (so passwords may hold ``@``, ``:`` and ``/``)."""
    slash = text.rfind("/")
    if slash < 0:
        raise ValueError(f"connectionString {_masked(text)!r} has no '/database': "
                         f"expected {_SHAPE}")
    left, right = text[:slash], text[slash + 1:]
    user, password, endpoint = "root", "", left
    at = left.rfind("@")
    if at >= 0:
        credentials, endpoint = left[:at], left[at + 1:]
        user, _, password = credentials.partition(":")
    net, address = endpoint, ""
    paren = endpoint.find("(")
    if paren >= 0:
        if not endpoint.endswith(")"):
            raise ValueError(f"connectionString {_masked(text)!r}: network address not "
                             "terminated (missing closing parenthesis)")
        net, address = endpoint[:paren], endpoint[paren + 1:-1]
    net = net or "tcp"
    arguments: dict[str, Any] = {"user": user, "password": password}
    if net == "unix":
        arguments["unix_socket"] = address or "/tmp/mysql.sock"
    elif net == "tcp":
        arguments["host"], arguments["port"] = _host_port(address or "127.0.0.1:3306", text)
    else:
        raise ValueError(f"connectionString network {net!r} is not supported (tcp or unix)")
    database, _, params = right.partition("?")
    database = unquote(database)
    if database:
        arguments["db"] = database
    pairs = []
    for part in params.split("&") if params else ():
        key, sep, value = part.partition("=")
        if sep:
            pairs.append((key, unquote(value.replace("+", " "))))
    _apply_params(arguments, pairs)
    return arguments


def _host_port(address: str, text: str) -> tuple[str, int]:
    if address.startswith("["):  # [::1]:3306
        host, bracket, rest = address[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"connectionString address {address!r} is not [ipv6]:port")
        port = rest[1:] if rest else "3306"
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    else:  # a name, or a bare IPv6 address
        host, port = address, "3306"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"connectionString {_masked(text)!r}: port {port!r} is not a number "
                         "between 1 and 65535")
    return host or "127.0.0.1", int(port)


def _apply_params(arguments: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    variables = []
    for key, value in pairs:
        name = key.lower()
        if name == "tls":
            context = _tls_context(value)
            if context is not None:
                arguments["ssl"] = context
        elif name == "timeout":
            try:
                arguments["connect_timeout"] = parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"connectionString parameter timeout: {exc}") from None
        elif name in _IGNORED_PARAMS:
            continue
        elif _VARIABLE.match(key):
            variables.append(f"{key} = {value}")
        else:
            raise ValueError(f"connectionString parameter {key!r} is not a valid name")
    if variables:
        arguments["init_command"] = "SET SESSION " + ", ".join(variables)


def _tls_context(value: str) -> ssl.SSLContext | None:
    mode = value.lower()
    if mode in ("", "false", "0"):
        return None
    context = ssl.create_default_context()
    if mode in ("true", "1"):
        return context
    if mode in ("skip-verify", "preferred"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    raise ValueError(f"connectionString parameter tls={value!r}: expected true, false, "
                     "skip-verify or preferred (named TLS configs are not supported)")


def _masked(dsn: str) -> str:
    """The DSN without its password, for messages."""
    slash = dsn.rfind("/")
    at = dsn.rfind("@", 0, slash if slash >= 0 else len(dsn))
    if at < 0:
        return dsn
    user = dsn[:at].partition(":")[0]
    return f"{user}:***{dsn[at:]}"


def quote_name(name: str) -> str:
    """```name```; names are checked against TABLE_NAME beforehand."""
    return f"`{name}`"


# ---- errors ---------------------------------------------------------------------------------


def _code(exc: BaseException) -> int | None:
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) else None


ERRORS = DriverErrors(
    "mysql",
    connection_errors=("builtins:OSError", "pymysql.err:InterfaceError"),
    rules=(
        Rule(("pymysql.err:OperationalError",), Unavailable, "{backend} unreachable: {reason}",
             when=lambda exc: _code(exc) in CONNECTION_ERRORS, reason=lambda exc: exc.args[-1]),
        Rule(("pymysql.err:OperationalError",), Unavailable,
             "{backend} is read-only: {reason}",
             when=lambda exc: _code(exc) == READ_ONLY_OPTION and "read-only" in str(exc),
             reason=lambda exc: exc.args[-1]),
        Rule(("pymysql.err:OperationalError",), Unavailable,
             "{backend} did not answer in time: {reason}",
             when=lambda exc: _code(exc) in TIMEOUT_ERRORS, reason=lambda exc: exc.args[-1]),
    ),
)
"""PyMySQL's errors: timeouts, broken connections and the server's connection and timeout
codes are Unavailable, the rest Internal."""
map_error = ERRORS.map


def _connection_is_sound(exc: BaseException) -> bool:
    """True when ``exc`` leaves the connection usable: the server answered with an error (or
    our own code refused a result). Anything else — timeouts, cancellation, network and
    protocol errors — may leave unread data behind, so the connection must be closed."""
    import pymysql

    if isinstance(exc, PylottoError):
        return True
    if isinstance(exc, pymysql.err.MySQLError) and not isinstance(exc, pymysql.err.InterfaceError):
        code = _code(exc)
        return code is not None and code < 2000 and code not in CONNECTION_ERRORS
    return False


def _is_deadlock(exc: BaseException) -> bool:
    cause = exc.__cause__
    return cause is not None and _code(cause) == DEADLOCK


def _quiet_cursor_class() -> type:
    """aiomysql's cursor without the ``SHOW WARNINGS`` round trip (and ``warnings.warn``) it
    makes after every statement that has a note, such as ``CREATE TABLE IF NOT EXISTS``."""
    import aiomysql

    class QuietCursor(aiomysql.Cursor):  # type: ignore[misc]
        async def _show_warnings(self, conn: Any) -> None:
            return None

    return QuietCursor


# ---- the client -----------------------------------------------------------------------------


class MySQLClient:
    """An aiomysql pool (autocommit) with a timeout on every call and pylotto errors out.

    ``what`` names the component in every message (``"state store orders"``).
    """

    def __init__(self, settings: MySQLSettings, what: str) -> None:
        self.settings = settings
        self.what = what
        self.timeout = settings.call_timeout
        self._arguments = connect_arguments(settings.connection_string)
        self._pool: Any = None
        self.key_collation = "utf8mb4_bin"
        """The binary collation of key columns; set by :meth:`open` to a NO PAD one."""
        self.server_version = ""
        self.max_allowed_packet = 16 << 20

    def table(self, name: str) -> str:
        """The quoted name of table ``name``, in ``schemaName`` when one is set."""
        schema = self.settings.schema_name
        return quote_name(name) if schema is None else f"{quote_name(schema)}.{quote_name(name)}"

    async def open(self, schema: list[str] | None = None) -> None:
        """Build the pool, learn about the server and run ``schema`` (see :meth:`run_schema`)."""
        import aiomysql

        arguments = dict(self._arguments)
        arguments["connect_timeout"] = min(arguments.get("connect_timeout") or self.timeout,
                                           self.timeout)
        arguments["init_command"] = self._session_limits(arguments.get("init_command"))
        try:
            async with asyncio.timeout(self.timeout):
                self._pool = await aiomysql.create_pool(
                    **arguments, minsize=min(self.settings.min_conns, self.settings.max_conns),
                    maxsize=self.settings.max_conns, autocommit=True, charset="utf8mb4",
                    cursorclass=_quiet_cursor_class(), pool_recycle=300,
                )
        except Exception as exc:
            raise map_error(exc, self.what) from exc
        try:
            await self._inspect()
            if schema:
                await self.run_schema(schema)
        except BaseException:
            await self.close()
            raise

    def _session_limits(self, init_command: str | None) -> str:
        """``SET SESSION`` making the server give up on a statement when the client does: a
        write whose caller timed out must not land later (a closed connection does not stop a
        running statement). Lock waits end after the timeout rounded up to a second; MariaDB
        (``/*M!`` runs there only) also stops any statement at the timeout itself."""
        limits = (f"innodb_lock_wait_timeout = {max(1, math.ceil(self.timeout))} "
                  f"/*M!100108 , max_statement_time = {self.timeout:.3f} */")
        if init_command:
            return f"{init_command}, {limits}"
        return f"SET SESSION {limits}"

    async def _inspect(self) -> None:
        marks = ", ".join(["%s"] * len(KEY_COLLATIONS))

        async def inspect(cursor: Any) -> None:
            await cursor.execute("SELECT VERSION(), @@max_allowed_packet")
            self.server_version, self.max_allowed_packet = await cursor.fetchone()
            await cursor.execute("SELECT COLLATION_NAME FROM information_schema.COLLATIONS "
                                 f"WHERE COLLATION_NAME IN ({marks})", KEY_COLLATIONS)
            found = {row[0] for row in await cursor.fetchall()}
            self.key_collation = next((c for c in KEY_COLLATIONS if c in found), "utf8mb4_bin")

        await self.call(inspect)

    async def run_schema(self, statements: list[str]) -> None:
        """Run idempotent DDL (``CREATE ... IF NOT EXISTS``) under the server-wide named lock
        ``pylotto-schema``, so several sidecars creating the same tables at once do not collide;
        creates ``schemaName`` first when one is set."""
        schema = self.settings.schema_name
        if schema is not None:
            statements = [f"CREATE DATABASE IF NOT EXISTS {quote_name(schema)} "
                          "CHARACTER SET utf8mb4", *statements]

        async def create(cursor: Any) -> None:
            await cursor.execute("SELECT GET_LOCK(%s, %s)",
                                 (SCHEMA_LOCK, max(1, math.ceil(self.timeout))))
            (granted,) = await cursor.fetchone()
            if granted != 1:
                raise Unavailable(f"{self.what}: another client holds the lock "
                                  f"{SCHEMA_LOCK!r} for too long")
            try:
                for statement in statements:
                    await cursor.execute(statement)
            finally:
                await cursor.execute("DO RELEASE_LOCK(%s)", (SCHEMA_LOCK,))

        await self.call(create, retry=False)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            try:
                async with asyncio.timeout(self.timeout):
                    await pool.wait_closed()
            except (Exception, TimeoutError):
                pool.terminate()

    @asynccontextmanager
    async def cursor(self, *, transaction: bool = False,
                     within: float | None = None) -> AsyncIterator[Any]:
        """A cursor on a pooled connection for a block that must finish within the timeout;
        with ``transaction``, the block is one transaction, committed at its end and rolled
        back on any error; ``within`` replaces the timeout. Driver errors leave as pylotto
        errors."""
        pool = self._pool
        if pool is None:
            raise Unavailable(f"{self.what} is not open")
        conn: Any = None
        try:
            async with asyncio.timeout(self.timeout if within is None else within):
                conn = await pool.acquire()
                cursor = await conn.cursor()
                if transaction:
                    await conn.begin()
                yield cursor
                if transaction:
                    await conn.commit()
        except BaseException as exc:
            if conn is not None:
                await self._after_failure(conn, exc, transaction)
            if isinstance(exc, Exception) and not isinstance(exc, PylottoError):
                raise map_error(exc, self.what) from exc
            raise
        finally:
            if conn is not None:
                pool.release(conn)

    async def _after_failure(self, conn: Any, exc: BaseException, transaction: bool) -> None:
        """Close a connection that may be out of step; roll back a sound one."""
        if not _connection_is_sound(exc):
            conn.close()
            return
        if transaction:
            try:
                async with asyncio.timeout(self.timeout):
                    await conn.rollback()
            except asyncio.CancelledError:
                conn.close()
                raise
            except Exception:  # the error that failed the block is the one to report
                conn.close()

    async def call(self, work: Callable[[Any], Awaitable[T]], *, transaction: bool = False,
                   retry: bool = True) -> T:
        """``work(cursor)`` within the timeout (one transaction with ``transaction``).

        With ``retry``, a deadlock — InnoDB rolled the work back — runs it again while time
        remains; ``work`` must then be one unit: a transaction, or a single write statement.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                async with self.cursor(transaction=transaction,
                                       within=max(deadline - loop.time(), 0.001)) as cursor:
                    return await work(cursor)
            except Internal as exc:
                if not (retry and _is_deadlock(exc)) or loop.time() >= deadline:
                    raise
            await asyncio.sleep(0.005)

    async def fetchall(self, sql: str, args: Any = None) -> list[Any]:
        async def run(cursor: Any) -> list[Any]:
            await cursor.execute(sql, args)
            return list(await cursor.fetchall())

        return await self.call(run)

    async def execute(self, sql: str, args: Any = None) -> int:
        """Run one statement; the number of rows it changed."""

        async def run(cursor: Any) -> int:
            return int(await cursor.execute(sql, args))

        return await self.call(run)

    async def ping(self) -> None:
        await self.fetchall("SELECT 1")

