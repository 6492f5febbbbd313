"""``sqlite``: a state store in one SQLite file (survives restarts; no server needed).

Metadata (Dapr's names): ``connectionString`` — the database file (default
``<data_dir>/state-<name>.db``; a relative path is taken under the data dir; ``file:...`` URIs and
``:memory:`` are passed to SQLite as such), ``tableName`` (default ``state``),
``cleanupIntervalInSeconds`` (how often expired rows are deleted; default 3600, ``<= 0``: only
on start; with several sidecars on one file, one of them per interval: see
:mod:`.sql_cleanup`), plus ``keyPrefix`` and ``ttlInSeconds`` of every state store.

Each row keeps ``value``, an integer ``etag`` and ``expires_at`` (Unix seconds, NULL = never).
Etags come from a one-row version table bumped inside each write transaction, so they never
repeat, even across several sidecars sharing the file. Every write is one ``BEGIN IMMEDIATE``
transaction: a failed etag check rolls back the whole batch. Processes sharing the file take
turns at writing (:class:`~pylotto.components._backends.sqlite_file.WriterTurns`). Expired
rows are invisible to reads at once and deleted by the periodic cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import aiosqlite
from pydantic import Field

from pylotto.components._backends.sqlite_file import (
    DB_ERRORS,
    TABLE_NAME,
    WriterTurns,
    database_target,
    db_error,
    open_database,
)
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import (
    BatchStateStore,
    BulkGetItem,
    Concurrency,
    Consistency,
    Feature,
    GetResult,
    KeyListingStateStore,
    SetRequest,
    StateSettings,
    TransactionOp,
    check_write,
    expires_at,
    expiry_metadata,
    prefix_end,
)
from pylotto.components.state.query import Query as StateQuery
from pylotto.components.state.query import (
    QueryableStateStore,
    QueryItem,
    QueryResult,
    sort_and_filter_sequence,
)
from pylotto.components.state.sql_cleanup import LAST_CLEANUP, META_SUFFIX, ExpirySweeper
from pylotto.core.errors import Internal, Unavailable
from pylotto.core.types import Metadata

BULK_CHUNK = 500
"""Keys per statement of a bulk read (SQLite's bound-parameter limit is 999 before 3.32)."""


class SqliteStateSettings(StateSettings):
    connection_string: str = Field("", alias="connectionString")
    table_name: str = Field("state", alias="tableName", pattern=TABLE_NAME)
    cleanup_interval_in_seconds: float = Field(3600.0, alias="cleanupIntervalInSeconds")


class SqliteStateStore(BatchStateStore, QueryableStateStore, KeyListingStateStore):
    Settings = SqliteStateSettings
    settings: SqliteStateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL, Feature.QUERY_API})

    def __init__(
        self, name: str, settings: SqliteStateSettings, context: ComponentContext
    ) -> None:
        super().__init__(name, settings, context)
        self.target, self._uri = database_target(
            settings.connection_string, f"state-{name}.db", context.data_dir
        )
        table = settings.table_name
        self._table = f'"{table}"'
        self._versions = f'"{table}_version"'
        self._meta = f'"{table}{META_SUFFIX}"'
        self._db: aiosqlite.Connection | None = None
        # One connection; the lock keeps reads out of another coroutine's open transaction.
        self._lock = asyncio.Lock()
        self._turns = WriterTurns(self.target, self._uri, f"state store {name}")
        self._sweeper = ExpirySweeper(settings.cleanup_interval_in_seconds, self._claim_sweep,
                                      self.delete_expired, context.logger)

    # ---- lifecycle -----------------------------------------------------------------------

    async def init(self) -> None:
        schema = [
            f"CREATE TABLE IF NOT EXISTS {self._table} (key TEXT NOT NULL PRIMARY KEY, "
            "value BLOB NOT NULL, etag INTEGER NOT NULL, expires_at REAL)",
            f'CREATE INDEX IF NOT EXISTS "{self.settings.table_name}_expires_at" '
            f"ON {self._table} (expires_at) WHERE expires_at IS NOT NULL",
            f"CREATE TABLE IF NOT EXISTS {self._versions} "
            "(id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL)",
            f"INSERT OR IGNORE INTO {self._versions} (id, last) VALUES (1, 0)",
            f"CREATE TABLE IF NOT EXISTS {self._meta} "
            "(key TEXT NOT NULL PRIMARY KEY, value REAL NOT NULL)",
        ]
        self._db = await open_database(
            self.target, self._uri, what=f"state store {self.name}", schema=schema
        )
        self._turns.open()
        await self._sweeper.start()

    async def close(self) -> None:
        await self._sweeper.close()
        if self._db is not None:
            db, self._db = self._db, None
            async with self._lock:
                await db.close()
            self._turns.close()

    async def ping(self) -> None:
        await self._fetch("SELECT 1", ())

    async def _claim_sweep(self, min_age: float) -> bool:
        """Mark the last-cleanup row "now" if it is ``min_age`` seconds old (or missing)."""
        now = time.time()
        return await self._change(
            f"INSERT INTO {self._meta} (key, value) VALUES (?, ?) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value WHERE value <= ?",
            (LAST_CLEANUP, now, now - min_age)) > 0

    async def delete_expired(self) -> int:
        """Delete the rows whose TTL has passed; returns how many."""
        return await self._change(
            f"DELETE FROM {self._table} WHERE expires_at IS NOT NULL AND expires_at <= ?",
            (time.time(),))

    async def _change(self, sql: str, params: tuple[Any, ...]) -> int:
        """Run one write statement on its own (autocommit); the rows it changed."""
        async with self._lock, self._turns.turn():
            db = self._conn()
            try:
                cursor = await db.execute(sql, params)
                changed: int = cursor.rowcount
                await cursor.close()
            except DB_ERRORS as exc:
                raise db_error(exc, f"state store {self.name}") from exc
        return changed

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise Unavailable(f"state store {self.name} is not open")
        return self._db

    async def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        async with self._lock:
            db = self._conn()
            try:
                async with db.execute(sql, params) as cursor:
                    return list(await cursor.fetchall())
            except DB_ERRORS as exc:
                raise db_error(exc, f"state store {self.name}") from exc

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        rows = await self._fetch(
            f"SELECT value, etag, expires_at FROM {self._table} "
            "WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
            (key, time.time()),
        )
        if not rows:
            return None
        value, etag, expiry = rows[0]
        return GetResult(bytes(value), str(etag), expiry_metadata(expiry))

    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        rows = await self._fetch(
            f"SELECT key FROM {self._table} WHERE key >= ? AND key < ? "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?",
            (prefix, prefix_end(prefix), time.time(), limit),
        )
        return [str(row[0]) for row in rows]

    async def query(self, query: StateQuery, metadata: Metadata) -> QueryResult:
        # SQL narrows to live JSON rows under the key prefix; filter, sort and paging follow the
        # reference semantics of pylotto.components.state.query (JSON type-exact comparisons).
        rows = await self._fetch(
            f"SELECT key, value, etag FROM {self._table} "
            "WHERE substr(key, 1, ?) = ? AND (expires_at IS NULL OR expires_at > ?) "
            "AND json_valid(CAST(value AS TEXT))",
            (len(query.key_prefix), query.key_prefix, time.time()),
        )
        items = [QueryItem(key, bytes(value), str(etag)) for key, value, etag in rows]
        return sort_and_filter_sequence(items, query)

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        """One statement per :data:`BULK_CHUNK` keys, all under one hold of the lock.

        Keys are bound as parameters (not as one JSON list: SQLite's JSON functions end a
        string at an embedded NUL, so a key such as ``"a\\x00b"`` would never match)."""
        if not keys:
            return []
        unique = list(dict.fromkeys(keys))
        now = time.time()
        rows: list[sqlite3.Row] = []
        async with self._lock:
            db = self._conn()
            try:
                for start in range(0, len(unique), BULK_CHUNK):
                    chunk = unique[start:start + BULK_CHUNK]
                    marks = ", ".join("?" * len(chunk))
                    async with db.execute(
                        f"SELECT key, value, etag, expires_at FROM {self._table} "
                        f"WHERE key IN ({marks}) AND (expires_at IS NULL OR expires_at > ?)",
                        (*chunk, now),
                    ) as cursor:
                        rows.extend(await cursor.fetchall())
            except DB_ERRORS as exc:
                raise db_error(exc, f"state store {self.name}") from exc
        found = {key: (bytes(value), str(etag), expiry) for key, value, etag, expiry in rows}
        items = []
        for key in keys:
            if key in found:
                value, etag, expiry = found[key]
                items.append(BulkGetItem(key, value, etag, metadata=expiry_metadata(expiry)))
            else:
                items.append(BulkGetItem(key))
        return items

    # ---- writes ----------------------------------------------------------------------------

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        """Run ``operations`` in one transaction; any failure rolls every one of them back."""
        if not operations:
            return
        async with self._lock, self._turns.turn():
            db = self._conn()
            try:
                await db.execute("BEGIN IMMEDIATE")
            except DB_ERRORS as exc:
                raise db_error(exc, f"state store {self.name}") from exc
            try:
                await self._apply_in_transaction(db, operations)
                await db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(*DB_ERRORS):
                    await db.execute("ROLLBACK")
                if isinstance(exc, DB_ERRORS):
                    raise db_error(exc, f"state store {self.name}") from exc
                raise

    async def _apply_in_transaction(
        self, db: aiosqlite.Connection, operations: Sequence[TransactionOp]
    ) -> None:
        """Every etag check in one statement, then every upsert in one ``executemany`` and
        every delete in another: a batch of N writes is five statements (BEGIN, the version
        bump, the checks, the writes, COMMIT), not 3 + 2N round trips to the database thread.
        A batch naming a key twice is applied one operation after the other (a check sees the
        batch's earlier writes)."""
        now = time.time()
        version = await self._reserve_versions(
            db, sum(isinstance(op, SetRequest) for op in operations)
        )
        if len({op.key for op in operations}) < len(operations):
            await self._apply_in_order(db, operations, version, now)
            return
        checked = [op for op in operations if _needs_check(op)]
        if checked:
            live = await self._live_versions(db, [op.key for op in checked], now)
            for op in checked:
                check_write(op, live.get(op.key), self.name)
        rows: list[tuple[str, bytes, int, float | None]] = []
        for op in operations:
            if isinstance(op, SetRequest):
                rows.append((op.key, op.value, version,
                             expires_at(op.ttl_seconds, self.settings.ttl_in_seconds, now)))
                version += 1
        if rows:
            await db.executemany(self._upsert, rows)
        deletes = [(op.key,) for op in operations if not isinstance(op, SetRequest)]
        if deletes:
            await db.executemany(f"DELETE FROM {self._table} WHERE key = ?", deletes)

    async def _apply_in_order(self, db: aiosqlite.Connection,
                              operations: Sequence[TransactionOp], version: int,
                              now: float) -> None:
        for op in operations:
            if _needs_check(op):
                check_write(op, await self._live_version(db, op.key, now), self.name)
            if isinstance(op, SetRequest):
                expiry = expires_at(op.ttl_seconds, self.settings.ttl_in_seconds, now)
                await db.execute(self._upsert, (op.key, op.value, version, expiry))
                version += 1
            else:
                await db.execute(f"DELETE FROM {self._table} WHERE key = ?", (op.key,))

    @property
    def _upsert(self) -> str:
        return (f"INSERT INTO {self._table} (key, value, etag, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "etag = excluded.etag, expires_at = excluded.expires_at")

    async def _live_versions(self, db: aiosqlite.Connection, keys: list[str],
                             now: float) -> dict[str, int]:
        """The live version of each of ``keys`` that has one."""
        found: dict[str, int] = {}
        for start in range(0, len(keys), BULK_CHUNK):
            chunk = keys[start:start + BULK_CHUNK]
            marks = ", ".join("?" * len(chunk))
            async with db.execute(
                f"SELECT key, etag FROM {self._table} WHERE key IN ({marks}) "
                "AND (expires_at IS NULL OR expires_at > ?)", (*chunk, now),
            ) as cursor:
                found.update((str(key), int(etag)) for key, etag in await cursor.fetchall())
        return found

    async def _reserve_versions(self, db: aiosqlite.Connection, count: int) -> int:
        """The first of ``count`` fresh versions (0 when none is needed)."""
        if count == 0:
            return 0
        async with db.execute(
            f"UPDATE {self._versions} SET last = last + ? WHERE id = 1 RETURNING last", (count,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            raise Internal(f"state store {self.name}: version table {self._versions} is empty")
        last: int = row[0]
        return last - count + 1

    async def _live_version(self, db: aiosqlite.Connection, key: str, now: float) -> int | None:
        async with db.execute(
            f"SELECT etag FROM {self._table} "
            "WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)",
            (key, now),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else int(row[0])


def _needs_check(op: TransactionOp) -> bool:
    return op.etag is not None or (
        isinstance(op, SetRequest) and op.concurrency is Concurrency.FIRST_WRITE)
