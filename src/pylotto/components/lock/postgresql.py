"""``postgresql``: leases in one PostgreSQL table, shared by every sidecar using it.

Metadata: ``connectionString``, ``timeout`` / ``timeoutInSeconds``, ``maxConns``, ``minConns``
(see :mod:`pylotto.components._backends.postgres_client`), ``tableName`` (default ``locks``), plus
``keyPrefix`` of every lock store.

Row: ``resource`` (primary key), ``owner``, ``expires_at``. Expiry uses the server's clock, so
sidecars with skewed clocks still agree. Every verb is one statement: ``try_lock`` is an
``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`` (of concurrent contenders exactly one
gets a row back); ``unlock`` and ``keep_alive`` act only ``WHERE owner = $n`` and live, and tell
"absent" from "someone else's" in the same statement.
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
from pylotto.components.lock.base import LockSettings, LockStatus, LockStore

LIVE = "expires_at > clock_timestamp()"


class PostgresLockSettings(LockSettings, PostgresSettings):
    table_name: str = Field("locks", alias="tableName", pattern=TABLE_NAME)


class PostgresLockStore(LockStore):
    Settings = PostgresLockSettings
    settings: PostgresLockSettings

    def __init__(
        self, name: str, settings: PostgresLockSettings, context: ComponentContext
    ) -> None:
        super().__init__(name, settings, context)
        self.client = PostgresClient(settings, f"lock store {name}")
        self.table = quote_table(settings.table_name)

    async def init(self) -> None:
        await self.client.open([
            f"CREATE TABLE IF NOT EXISTS {self.table} (resource TEXT NOT NULL PRIMARY KEY, "
            "owner TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)",
        ])

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        row = await self.client.fetchrow(
            f"INSERT INTO {self.table} AS t (resource, owner, expires_at) "
            "VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3)) "
            "ON CONFLICT (resource) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at WHERE t.expires_at <= clock_timestamp() "
            "RETURNING t.owner",
            resource_id, owner, float(expire_seconds),
        )
        return row is not None

    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        # The CTE deletes only the caller's live lease; the outer SELECT reads the row as it
        # was before the statement, which tells "absent" from "held by someone else".
        row = await self.client.fetchrow(
            f"WITH gone AS (DELETE FROM {self.table} WHERE resource = $1 AND owner = $2 "
            f"AND {LIVE} RETURNING resource) "
            "SELECT (SELECT count(*) FROM gone) AS done, "
            f"(SELECT owner FROM {self.table} WHERE resource = $1 AND {LIVE}) AS holder",
            resource_id, owner,
        )
        return _status(row)

    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        row = await self.client.fetchrow(
            f"WITH renewed AS (UPDATE {self.table} "
            "SET expires_at = clock_timestamp() + make_interval(secs => $3) "
            f"WHERE resource = $1 AND owner = $2 AND {LIVE} RETURNING resource) "
            "SELECT (SELECT count(*) FROM renewed) AS done, "
            f"(SELECT owner FROM {self.table} WHERE resource = $1 AND {LIVE}) AS holder",
            resource_id, owner, float(expire_seconds),
        )
        return _status(row)


def _status(row: object) -> LockStatus:
    if row is None:
        return LockStatus.INTERNAL_ERROR
    done: int = row["done"]  # type: ignore[index]
    holder: str | None = row["holder"]  # type: ignore[index]
    if done:
        return LockStatus.SUCCESS
    if holder is None:
        return LockStatus.LOCK_UNEXIST
    return LockStatus.LOCK_BELONG_TO_OTHERS
