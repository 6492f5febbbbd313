"""``postgresql`` at ``version: v2``: Dapr's PostgreSQL state store v2 (components-contrib
``state/postgresql/v2``), its table layout, etags and metadata keys, so that pylotto and daprd
sidecars can share one table.

Metadata (contrib v2's names): ``connectionString``, ``timeout`` (default ``20s``, at least
1 s) or ``timeoutInSeconds``, ``maxConns``, ``minConns``, ``connectionMaxIdleTime`` (see
:mod:`pylotto.components._backends.postgres_client`), ``tablePrefix`` (default empty; the
table is ``<tablePrefix>state``, ``schema.prefix_`` allowed), ``metadataTableName`` (default
``dapr_metadata``), ``cleanupInterval`` or ``cleanupIntervalInSeconds`` (default 1 h; ``0`` or
a negative value: no periodic cleanup), plus ``keyPrefix`` and ``ttlInSeconds`` of every store.
Names are folded to lower case, as PostgreSQL folds contrib's unquoted names.

Table ``<tablePrefix>state``: ``key`` TEXT primary key, ``value`` BYTEA (the bytes as saved),
``etag`` UUID (a new random one per write), ``created_at``, ``updated_at``, ``expires_at``
(NULL: never) and ``row_id`` (an identity column, unique). The metadata table (``key``,
``value`` TEXT) holds contrib's rows: ``lock`` (the migration lock, taken with ``SELECT ...
FOR UPDATE``), ``migrations-state-v2-<tablePrefix>`` (the schema level, 2) and
``last-cleanup-state-v2-<tablePrefix>`` (when expired rows were last deleted). The schema is
brought to level 2 by contrib's two migrations, so a table daprd created is used as it is.

Etags as contrib's ``doSet`` / ``doDelete``: a given etag that is not a UUID is a mismatch
(``ABORTED``), as is one that is not the row's; a save with an etag updates only a live row,
a delete with an etag deletes the row whatever its expiry. Writes of a bulk request or a
transaction run in one database transaction. No query API (v2 has none).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from pylotto.components._backends.postgres_client import (
    TABLE_NAME,
    PostgresClient,
    PostgresSettings,
    quote_table,
)
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.state.base import (
    BatchStateStore,
    BulkGetItem,
    Concurrency,
    Consistency,
    DeleteRequest,
    Feature,
    GetResult,
    KeyListingStateStore,
    SetRequest,
    StateSettings,
    TransactionOp,
    expiry_metadata,
)
from pylotto.components.state.sql_cleanup import ExpirySweeper
from pylotto.core.errors import EtagMismatch
from pylotto.core.metadata import parse_duration
from pylotto.core.types import Metadata

DEFAULT_TIMEOUT = 20.0
DEFAULT_CLEANUP = 3600.0
LIVE = "(expires_at IS NULL OR expires_at >= now())"
"""A row is live until its expiry (contrib v2's reads: ``expires_at >= now()``)."""
LOCK_KEY = "lock"
SCHEMA_LEVEL = 2


def _interval(value: object) -> float:
    """Seconds of ``cleanupInterval``: a duration or seconds; ``0`` or negative: 0 (none)."""
    text = str(value).strip()
    if text.startswith("-"):
        return 0.0
    return parse_duration(text)


class PostgresV2StateSettings(StateSettings, PostgresSettings):
    timeout: float = Field(DEFAULT_TIMEOUT, alias="timeout")
    table_prefix: str = Field("", alias="tablePrefix")
    metadata_table_name: str = Field("dapr_metadata", alias="metadataTableName")
    cleanup_interval: str = Field("", alias="cleanupInterval")
    cleanup_interval_in_seconds: str = Field("", alias="cleanupIntervalInSeconds")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> float:
        return parse_duration(value)

    @field_validator("timeout", "timeout_in_seconds")
    @classmethod
    def _at_least_a_second(cls, value: float | None) -> float | None:
        if value is not None and value < 1:
            raise ValueError("invalid value for 'timeout': must be greater than 1s")
        return value

    @field_validator("cleanup_interval", "cleanup_interval_in_seconds", mode="before")
    @classmethod
    def _cleanup(cls, value: object) -> str:
        text = str(value).strip()
        if text:
            _interval(text)  # refused here when it is no duration
        return text

    @field_validator("table_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _valid_table(f"{value}state"):
            raise ValueError(f"the table {value}state is not a name or schema.name of "
                             "letters, digits and _")
        return value

    @field_validator("metadata_table_name")
    @classmethod
    def _metadata_table(cls, value: str) -> str:
        if not _valid_table(value):
            raise ValueError(f"{value!r} is not a name or schema.name of letters, digits and _")
        return value

    @property
    def state_table(self) -> str:
        return (self.table_prefix + "state").lower()

    @property
    def metadata_table(self) -> str:
        return self.metadata_table_name.lower()

    @property
    def cleanup_seconds(self) -> float:
        """The cleanup interval; 0: none (contrib: no garbage collector)."""
        text = self.cleanup_interval or self.cleanup_interval_in_seconds
        return DEFAULT_CLEANUP if not text else _interval(text)


def _valid_table(name: str) -> bool:
    import re

    return re.fullmatch(TABLE_NAME, name) is not None


def _etag(op: TransactionOp, store: str) -> str | None:
    """The operation's etag as a UUID's text; a mismatch when it is none (contrib: when
    ``uuid.Parse`` fails, ``ETagMismatch``)."""
    if op.etag is None:
        return None
    try:
        return str(uuid.UUID(op.etag))
    except ValueError:
        raise EtagMismatch(f"state store {store}: etag mismatch for key {op.key!r}: "
                           f"{op.etag!r} is not a UUID, so no version of it") from None


class PostgresV2StateStore(ClientComponent[PostgresClient], BatchStateStore,
                           KeyListingStateStore):
    Settings = PostgresV2StateSettings
    settings: PostgresV2StateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL})
    refused_in_keys = "\x00"  # the key column is TEXT, which cannot hold NUL

    def __init__(
        self, name: str, settings: PostgresV2StateSettings, context: ComponentContext
    ) -> None:
        super().__init__(name, settings, context)
        self.client = PostgresClient(settings, f"state store {name}")
        self.table = quote_table(settings.state_table)
        self._relname = settings.state_table.split(".")[-1]
        self._meta = quote_table(settings.metadata_table)
        self._migrations_key = f"migrations-state-v2-{settings.table_prefix}"
        self._cleanup_key = f"last-cleanup-state-v2-{settings.table_prefix}"
        interval = settings.cleanup_seconds
        self._sweeper = ExpirySweeper(interval, self._claim_sweep, self.delete_expired,
                                      context.logger) if interval > 0 else None

    # ---- lifecycle -----------------------------------------------------------------------

    async def init(self) -> None:
        await self.client.open()
        await self.client.call(self._migrate)
        if self._sweeper is not None:
            await self._sweeper.start()

    async def close(self) -> None:
        if self._sweeper is not None:
            await self._sweeper.close()
        await super().close()

    async def _migrate(self, conn: Any) -> None:
        """contrib's migrations: the metadata table and its lock row, then, holding the lock
        row (``FOR UPDATE``), the schema from the level the metadata table records to 2."""
        import asyncpg

        for attempt in range(3):  # concurrent CREATE TABLE IF NOT EXISTS can collide (23505)
            try:
                await conn.execute(f"CREATE TABLE IF NOT EXISTS {self._meta} "
                                   "(key text NOT NULL PRIMARY KEY, value text NOT NULL)")
                break
            except asyncpg.UniqueViolationError:
                if attempt == 2:
                    raise
        await conn.execute(f"INSERT INTO {self._meta} (key, value) VALUES ($1, 'lock') "
                           "ON CONFLICT (key) DO NOTHING", LOCK_KEY)
        async with conn.transaction():
            await conn.fetchval(f"SELECT value FROM {self._meta} WHERE key = $1 FOR UPDATE",
                                LOCK_KEY)
            text = await conn.fetchval(f"SELECT value FROM {self._meta} WHERE key = $1",
                                       self._migrations_key)
            level = int(text) if text is not None else 0
            steps = (self._create_table, self._add_row_id)
            for number in range(level, min(SCHEMA_LEVEL, len(steps))):
                await steps[number](conn)
                await conn.execute(
                    f"INSERT INTO {self._meta} (key, value) VALUES ($1, $2) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    self._migrations_key, str(number + 1))

    async def _create_table(self, conn: Any) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (key text NOT NULL PRIMARY KEY, "
            "value bytea NOT NULL, etag uuid NOT NULL DEFAULT gen_random_uuid(), "
            "created_at timestamp with time zone NOT NULL DEFAULT now(), "
            "updated_at timestamp with time zone, expires_at timestamp with time zone)")
        await conn.execute(f"CREATE INDEX IF NOT EXISTS \"{self._relname}_expires_at_idx\" "
                           f"ON {self.table} (expires_at)")

    async def _add_row_id(self, conn: Any) -> None:
        """``row_id``: a unique identity column, existing rows numbered by (created_at, key)."""
        table = self.table
        await conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS row_id BIGINT")
        await conn.execute(
            f"UPDATE {table} AS t SET row_id = r.n FROM (SELECT key, ROW_NUMBER() OVER "
            f"(ORDER BY created_at, key) AS n FROM {table} WHERE row_id IS NULL) AS r "
            "WHERE r.key = t.key")
        await conn.execute(f"ALTER TABLE {table} ALTER COLUMN row_id SET NOT NULL")
        identity = await conn.fetchval(
            "SELECT a.attidentity <> '' FROM pg_attribute a WHERE a.attrelid = "
            "to_regclass($1) AND a.attname = 'row_id' AND NOT a.attisdropped", table)
        if not identity:
            await conn.execute(
                f"ALTER TABLE {table} ALTER COLUMN row_id ADD GENERATED BY DEFAULT AS IDENTITY")
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'row_id')", table)
        if sequence:
            await conn.execute(
                f"SELECT setval($1, COALESCE((SELECT max(row_id) FROM {table}), 0) + 1, false)",
                sequence)
        await conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS \"{self._relname}_row_id_uidx\" "
                           f"ON {table} (row_id)")

    async def _claim_sweep(self, min_age: float) -> bool:
        """contrib's last-cleanup row: set to now if it is ``min_age`` seconds old (or new)."""
        status = await self.client.execute(
            f"INSERT INTO {self._meta} AS m (key, value) VALUES ($1, now()::text) "
            "ON CONFLICT (key) DO UPDATE SET value = now()::text WHERE "
            "(EXTRACT('epoch' FROM now() - m.value::timestamp with time zone) * 1000)::bigint"
            " > $2", self._cleanup_key, int(min_age * 1000))
        return int(status.split()[-1]) > 0

    async def delete_expired(self) -> int:
        """Delete the rows whose TTL has passed; returns how many."""
        status = await self.client.execute(
            f"DELETE FROM {self.table} WHERE expires_at IS NOT NULL AND expires_at < now()")
        return int(status.split()[-1])

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        row = await self.client.fetchrow(
            f"SELECT value, etag, expires_at FROM {self.table} WHERE key = $1 AND {LIVE}", key)
        if row is None:
            return None
        return GetResult(bytes(row["value"]), str(row["etag"]), _expiry(row["expires_at"]))

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        """One query for every key."""
        if not keys:
            return []
        rows = await self.client.fetch(
            f"SELECT key, value, etag, expires_at FROM {self.table} "
            f"WHERE key = ANY($1::text[]) AND {LIVE}", list(dict.fromkeys(keys)))
        found = {row["key"]: row for row in rows}
        items = []
        for key in keys:
            row = found.get(key)
            items.append(BulkGetItem(key) if row is None else BulkGetItem(
                key, bytes(row["value"]), str(row["etag"]), metadata=_expiry(row["expires_at"])))
        return items

    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        rows = await self.client.fetch(
            f"SELECT key FROM {self.table} WHERE left(key, char_length($1)) = $1 AND "
            "(expires_at IS NULL OR expires_at > now()) ORDER BY key LIMIT $2", prefix, limit)
        return [str(row["key"]) for row in rows]

    # ---- writes ----------------------------------------------------------------------------

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        """Run ``operations`` in one transaction; any failure rolls every one of them back."""
        if not operations:
            return
        etags = [_etag(op, self.name) for op in operations]
        async with self.client.connection() as conn, conn.transaction():
            for op, etag in zip(operations, etags, strict=True):
                if isinstance(op, SetRequest):
                    await self._set(conn, op, etag)
                else:
                    await self._delete(conn, op, etag)

    def _ttl(self, request: SetRequest) -> int | None:
        ttl = self.settings.ttl_in_seconds if request.ttl_seconds is None else request.ttl_seconds
        return ttl if ttl is not None and ttl > 0 else None

    async def _set(self, conn: Any, op: SetRequest, etag: str | None) -> None:
        expiry = "CASE WHEN $3::bigint IS NULL THEN NULL ELSE now() + make_interval(secs => $3) END"
        if etag is not None:
            row = await conn.fetchrow(
                f"UPDATE {self.table} SET value = $2, updated_at = now(), "
                f"etag = gen_random_uuid(), expires_at = {expiry} "
                f"WHERE key = $1 AND etag = $4::uuid AND {LIVE} RETURNING key",
                op.key, op.value, self._ttl(op), etag)
            if row is None:
                raise EtagMismatch(
                    f"state store {self.name}: etag mismatch for key {op.key!r}: "
                    f"{op.etag!r} is not the current version (or the key does not exist)")
            return
        # an upsert either way: under first-write it replaces only a row that has expired
        only_expired = (" WHERE t.expires_at IS NOT NULL AND t.expires_at < now()"
                        if op.concurrency is Concurrency.FIRST_WRITE else "")
        status = await conn.execute(
            f"INSERT INTO {self.table} AS t (key, value, etag, expires_at) "
            f"VALUES ($1, $2, gen_random_uuid(), {expiry}) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value, updated_at = now(), etag = excluded.etag, "
            f"expires_at = excluded.expires_at{only_expired}", op.key, op.value, self._ttl(op))
        if int(status.split()[-1]) != 1:
            raise EtagMismatch(f"state store {self.name}: first-write: key {op.key!r} exists "
                               "and no etag was given")

    async def _delete(self, conn: Any, op: DeleteRequest, etag: str | None) -> None:
        if etag is None:
            await conn.execute(f"DELETE FROM {self.table} WHERE key = $1", op.key)
            return
        status = await conn.execute(
            f"DELETE FROM {self.table} WHERE key = $1 AND etag = $2::uuid", op.key, etag)
        if int(status.split()[-1]) != 1:
            raise EtagMismatch(
                f"state store {self.name}: etag mismatch for key {op.key!r}: "
                f"{op.etag!r} is not the current version (or the key does not exist)")


def _expiry(when: datetime | None) -> dict[str, str]:
    return expiry_metadata(None if when is None else when.timestamp())
