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
from pathlib import Path
from typing import Any

import aiosqlite
from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.errors import Internal, Unavailable
from pylotto.types import Metadata

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another connection (another sidecar) holding the file's lock."""


class SqliteSequencerSettings(SegmentSettings):
    connection_string: str = Field("", alias="connectionString")
    table_name: str = Field("sequencer", alias="tableName",
                            pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def database_target(connection_string: str, name: str, data_dir: Path) -> tuple[str, bool]:
    """What to hand ``sqlite3.connect``: (path or URI, is_uri)."""
    if connection_string.startswith("file:"):
        return connection_string, True
    if connection_string == ":memory:":
        return connection_string, False
    path = Path(connection_string).expanduser() if connection_string else Path(
        f"sequencer-{name}.db"
    )
    if not path.is_absolute():
        path = data_dir / path
    return str(path), False


class SqliteSequencer(SegmentSequencer):
    Settings = SqliteSequencerSettings
    settings: SqliteSequencerSettings
    features = frozenset({Feature.SEGMENT})

    def __init__(
        self, name: str, settings: SqliteSequencerSettings, context: ComponentContext
    ) -> None:
        super().__init__(name, settings, context)
        self.target, self._uri = database_target(
            settings.connection_string, name, context.data_dir
        )
        self._table = f'"{settings.table_name}"'
        self._db: aiosqlite.Connection | None = None

    async def init(self) -> None:
        if not self._uri and self.target != ":memory:":
            Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = await aiosqlite.connect(self.target, isolation_level=None, uri=self._uri)
            await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await self._db.execute("PRAGMA journal_mode = WAL")
            await self._db.execute("PRAGMA synchronous = FULL")
            await self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} "
                "(key TEXT NOT NULL PRIMARY KEY, last INTEGER NOT NULL)"
            )
        except sqlite3.Error as exc:
            await self.close()
            raise Unavailable(
                f"sequencer store {self.name}: cannot open {self.target}: {exc}"
            ) from exc

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def ping(self) -> None:
        await self._run("SELECT 1", ())

    async def _run(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        """Run one statement to completion (so an autocommit write is committed)."""
        if self._db is None:
            raise Unavailable(f"sequencer store {self.name} is not open")
        try:
            async with self._db.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except (sqlite3.Error, ValueError) as exc:
            if isinstance(exc, sqlite3.OperationalError | ValueError):
                raise Unavailable(f"sequencer store {self.name}: sqlite: {exc}") from exc
            raise Internal(f"sequencer store {self.name}: sqlite: {exc}") from exc

    async def _advance(self, key: str, count: int) -> int:
        """Move the key's high-water mark up by ``count``; the new mark."""
        rows = await self._run(
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
        await self._run(
            f"INSERT INTO {self._table} (key, last) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET last = max(last, excluded.last)",
            (key, floor),
        )

