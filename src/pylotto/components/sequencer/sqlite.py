"""``sqlite``: counters in one SQLite file, so ids keep growing across restarts.

Metadata: ``connectionString`` — the database file (default ``<data_dir>/sequencer-<name>.db``;
a relative path is taken under the data dir; ``file:...`` URIs are passed to SQLite as such),
``tableName`` (default ``sequencer``), ``segmentSize`` (ids reserved per WEAK refill, default
1000), plus ``keyPrefix`` and ``biggerThan`` of every sequencer.

Each key is one row holding the last id handed out (the high-water mark). ``next_id`` and
``get_segment`` move it with one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement,
committed (``synchronous = FULL``) before the ids leave the component: a crash can lose the
unused rest of a segment — a gap — but an id is never handed out twice, even by several
sidecars sharing the file.
"""

from __future__ import annotations

import sqlite3
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
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.core.errors import Internal, Unavailable
from pylotto.core.types import Metadata


class SqliteSequencerSettings(SegmentSettings):
    connection_string: str = Field("", alias="connectionString")
    table_name: str = Field("sequencer", alias="tableName", pattern=TABLE_NAME)


class SqliteSequencer(SegmentSequencer):
    Settings = SqliteSequencerSettings
    settings: SqliteSequencerSettings
    features = frozenset({Feature.SEGMENT})

    def __init__(
        self, name: str, settings: SqliteSequencerSettings, context: ComponentContext
    ) -> None:
        super().__init__(name, settings, context)
        self.target, self._uri = database_target(
            settings.connection_string, f"sequencer-{name}.db", context.data_dir
        )
        self._table = f'"{settings.table_name}"'
        self._db: aiosqlite.Connection | None = None
        self._turns = WriterTurns(self.target, self._uri, f"sequencer store {name}")

    async def init(self) -> None:
        self._db = await open_database(
            self.target, self._uri, what=f"sequencer store {self.name}",
            schema=[f"CREATE TABLE IF NOT EXISTS {self._table} "
                    "(key TEXT NOT NULL PRIMARY KEY, last INTEGER NOT NULL)"],
        )
        self._turns.open()

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()
        self._turns.close()

    async def ping(self) -> None:
        await self._run("SELECT 1", ())

    async def _run(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        """Run one statement to completion (so an autocommit write is committed)."""
        if self._db is None:
            raise Unavailable(f"sequencer store {self.name} is not open")
        try:
            async with self._db.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except DB_ERRORS as exc:
            raise db_error(exc, f"sequencer store {self.name}") from exc

    async def _write(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        """Run one write statement in this process's writer's turn."""
        async with self._turns.turn():
            return await self._run(sql, params)

    async def _advance(self, key: str, count: int) -> int:
        """Move the key's high-water mark up by ``count``; the new mark."""
        rows = await self._write(
            f"INSERT INTO {self._table} (key, last) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET last = last + excluded.last RETURNING last",
            (key, count),
        )
        if not rows:
            raise Internal(f"sequencer store {self.name}: no row returned for key {key!r}")
        last: int = rows[0][0]
        return last

    async def next_id(self, key: str, metadata: Metadata) -> int:
        return await self._advance(key, 1)

    async def get_segment(self, key: str, size: int) -> Segment:
        last = await self._advance(key, size)
        return Segment(last - size + 1, last)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        await self._write(
            f"INSERT INTO {self._table} (key, last) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET last = max(last, excluded.last)",
            (key, floor),
        )

