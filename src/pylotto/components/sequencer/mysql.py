"""``mysql``: counters in one MySQL / MariaDB table, shared by every sidecar using it.

Metadata: ``connectionString``, ``schemaName``, ``timeout`` / ``timeoutInSeconds``, ``maxConns``,
``minConns`` (see :mod:`pylotto.components._backends.mysql_client`), ``tableName`` (default
``sequencer``), ``segmentSize`` (ids reserved per WEAK refill, default 1000), plus ``keyPrefix`` and
``biggerThan`` of every sequencer.

Each key is one row (``id`` VARCHAR(255) in a binary NO PAD collation: keys are exact) holding
``last``, the last id handed out. ``next_id`` and ``get_segment`` move it with ``INSERT ... ON
DUPLICATE KEY UPDATE last = LAST_INSERT_ID(last + n)`` and read the new value with
``SELECT LAST_INSERT_ID()`` on the same connection: one atomic statement, committed (autocommit)
before the ids leave the component; the row lock makes concurrent callers, in any number of
sidecars, get disjoint ids. ``biggerThan`` raises the row with ``GREATEST``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pylotto.components._backends.mysql_client import (
    MAX_KEY_LENGTH,
    TABLE_NAME,
    MySQLClient,
    MySQLSettings,
)
from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.core.errors import InvalidArgument
from pylotto.core.types import Metadata


class MySQLSequencerSettings(SegmentSettings, MySQLSettings):
    table_name: str = Field("sequencer", alias="tableName", pattern=TABLE_NAME)


class MySQLSequencer(SegmentSequencer):
    Settings = MySQLSequencerSettings
    settings: MySQLSequencerSettings
    features = frozenset({Feature.SEGMENT})

    def __init__(self, name: str, settings: MySQLSequencerSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = MySQLClient(settings, f"sequencer store {name}")
        self.table = self.client.table(settings.table_name)

    async def init(self) -> None:
        await self.client.open()
        try:
            await self.client.run_schema([
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "id VARCHAR(255) CHARACTER SET utf8mb4 "
                f"COLLATE {self.client.key_collation} NOT NULL PRIMARY KEY, "
                "last BIGINT NOT NULL) ENGINE=InnoDB",
            ])
        except BaseException:
            await self.client.close()
            raise

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    def _check(self, key: str) -> None:
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidArgument(f"sequencer store {self.name}: key of {len(key)} characters: "
                                  f"at most {MAX_KEY_LENGTH}")

    async def _advance(self, key: str, count: int) -> int:
        """Move the key's high-water mark up by ``count``; the new mark."""
        self._check(key)

        async def run(cursor: Any) -> int:
            await cursor.execute(
                f"INSERT INTO {self.table} (id, last) VALUES (%s, LAST_INSERT_ID(%s)) "
                "ON DUPLICATE KEY UPDATE last = LAST_INSERT_ID(last + %s)", (key, count, count))
            await cursor.execute("SELECT LAST_INSERT_ID()")
            (last,) = await cursor.fetchone()
            return int(last)

        return await self.client.call(run)

    async def next_id(self, key: str, metadata: Metadata) -> int:
        return await self._advance(key, 1)

    async def get_segment(self, key: str, size: int) -> Segment:
        last = await self._advance(key, size)
        return Segment(last - size + 1, last)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        self._check(key)
        await self.client.execute(
            f"INSERT INTO {self.table} (id, last) VALUES (%s, %s) "
            "ON DUPLICATE KEY UPDATE last = GREATEST(last, VALUES(last))", (key, max(floor, 0)))
