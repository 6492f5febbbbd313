"""``postgresql``: counters in one PostgreSQL table, shared by every sidecar using it.

Metadata: ``connectionString``, ``timeout`` / ``timeoutInSeconds``, ``maxConns``, ``minConns``
(see :mod:`pylotto.components._backends.postgres_client`), ``tableName`` (default ``sequencer``),
``segmentSize`` (ids reserved per WEAK refill, default 1000), plus ``keyPrefix`` and
``biggerThan`` of every sequencer.

Each key is one row holding the last id handed out. ``next_id`` and ``get_segment`` move it with
one ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement, committed before the ids leave
the component; ``biggerThan`` raises it with ``GREATEST``. Row locks make concurrent callers
(in any number of sidecars) get disjoint ids.
"""

from __future__ import annotations

from pydantic import Field

from pylotto.components._backends.postgres_client import (
    TABLE_NAME,
    PostgresClient,
    PostgresSettings,
    quote_table,
)
from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.core.errors import Internal
from pylotto.core.types import Metadata


class PostgresSequencerSettings(SegmentSettings, PostgresSettings):
    table_name: str = Field("sequencer", alias="tableName", pattern=TABLE_NAME)


class PostgresSequencer(SegmentSequencer):
    Settings = PostgresSequencerSettings
    settings: PostgresSequencerSettings
    features = frozenset({Feature.SEGMENT})

    def __init__(
        self, name: str, settings: PostgresSequencerSettings, context: ComponentContext
    ) -> None:
        super().__init__(name, settings, context)
        self.client = PostgresClient(settings, f"sequencer store {name}")
        self.table = quote_table(settings.table_name)

    async def init(self) -> None:
        await self.client.open([
            f"CREATE TABLE IF NOT EXISTS {self.table} "
            "(key TEXT NOT NULL PRIMARY KEY, last BIGINT NOT NULL)",
        ])

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    async def _advance(self, key: str, count: int) -> int:
        """Move the key's high-water mark up by ``count``; the new mark."""
        row = await self.client.fetchrow(
            f"INSERT INTO {self.table} AS t (key, last) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET last = t.last + excluded.last RETURNING t.last",
            key, count,
        )
        if row is None:
            raise Internal(f"sequencer store {self.name}: no row returned for key {key!r}")
        last: int = row["last"]
        return last

    async def next_id(self, key: str, metadata: Metadata) -> int:
        return await self._advance(key, 1)

    async def get_segment(self, key: str, size: int) -> Segment:
        last = await self._advance(key, size)
        return Segment(last - size + 1, last)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        await self.client.execute(
            f"INSERT INTO {self.table} AS t (key, last) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET last = GREATEST(t.last, excluded.last)",
            key, floor,
        )
