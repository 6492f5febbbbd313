"""``sqlite``: leases in one SQLite file, shared by every process opening it.

Metadata: ``connectionString`` — the database file (default ``<data_dir>/lock-<name>.db``; a
relative path is taken under the data dir; ``file:...`` URIs are passed to SQLite as such),
``tableName`` (default ``locks``), plus ``keyPrefix`` of every lock store.

Row: ``resource`` (primary key), ``owner``, ``expires_at`` (Unix seconds of this machine's
clock: every process sharing a file runs on one machine). ``try_lock`` is one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`` statement: SQLite runs one writer at a
time over the file, so of concurrent contenders (in any process) exactly one changes a row.
``unlock`` and ``keep_alive`` act ``WHERE owner = ?`` and live, and read the holder in the same
``BEGIN IMMEDIATE`` transaction, so "absent" and "someone else's" are told apart exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
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
from pylotto.components.lock.base import LockSettings, LockStatus, LockStore
from pylotto.core.errors import Unavailable


class SqliteLockSettings(LockSettings):
    connection_string: str = Field("", alias="connectionString")
    table_name: str = Field("locks", alias="tableName", pattern=TABLE_NAME)


class SqliteLockStore(LockStore):
    Settings = SqliteLockSettings
    settings: SqliteLockSettings

    def __init__(self, name: str, settings: SqliteLockSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.target, self._uri = database_target(
            settings.connection_string, f"lock-{name}.db", context.data_dir)
        self._table = f'"{settings.table_name}"'
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()  # one connection: one transaction at a time on it
        self._turns = WriterTurns(self.target, self._uri, f"lock store {name}")

    async def init(self) -> None:
        self._db = await open_database(
            self.target, self._uri, what=f"lock store {self.name}",
            schema=[f"CREATE TABLE IF NOT EXISTS {self._table} (resource TEXT NOT NULL "
                    "PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL)"])
        self._turns.open()

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            async with self._lock:
                await db.close()
            self._turns.close()

    async def ping(self) -> None:
        async with self._lock:
            await self._rows(self._conn(), "SELECT 1", ())

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise Unavailable(f"lock store {self.name} is not open")
        return self._db

    async def _rows(self, db: aiosqlite.Connection, sql: str,
                    params: tuple[Any, ...]) -> list[sqlite3.Row]:
        try:
            async with db.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except DB_ERRORS as exc:
            raise db_error(exc, f"lock store {self.name}") from exc

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        now = time.time()
        async with self._lock, self._turns.turn():
            rows = await self._rows(
                self._conn(),
                f"INSERT INTO {self._table} AS t (resource, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (resource) DO UPDATE SET owner = excluded.owner, "
                "expires_at = excluded.expires_at WHERE t.expires_at <= ? RETURNING owner",
                (resource_id, owner, now + expire_seconds, now))
        return bool(rows)

    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        return await self._owned(
            resource_id, owner, f"DELETE FROM {self._table} WHERE resource = ?", ())

    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        return await self._owned(
            resource_id, owner,
            f"UPDATE {self._table} SET expires_at = ? WHERE resource = ?",
            (time.time() + expire_seconds,))

    async def _owned(self, resource_id: str, owner: str, sql: str,
                     params: tuple[Any, ...]) -> LockStatus:
        """Run ``sql`` (its last parameter: the resource) if ``owner`` holds a live lease,
        reading the holder and acting in one write transaction."""
        async with self._lock, self._turns.turn():
            db = self._conn()
            await self._rows(db, "BEGIN IMMEDIATE", ())
            try:
                rows = await self._rows(
                    db, f"SELECT owner FROM {self._table} WHERE resource = ? AND expires_at > ?",
                    (resource_id, time.time()))
                if not rows:
                    status = LockStatus.LOCK_UNEXIST
                elif rows[0][0] != owner:
                    status = LockStatus.LOCK_BELONG_TO_OTHERS
                else:
                    await self._rows(db, sql, (*params, resource_id))
                    status = LockStatus.SUCCESS
                await self._rows(db, "COMMIT", ())
            except BaseException:
                with contextlib.suppress(*DB_ERRORS):
                    await db.execute("ROLLBACK")
                raise
        return status
