"""``mysql``: a state store in one MySQL / MariaDB table, shared by every sidecar using it.

Metadata (Dapr's names): ``connectionString``, ``timeout`` / ``timeoutInSeconds``,
``maxConns``, ``minConns`` (see :mod:`pylotto.components.mysql_client`), ``tableName``
(default ``state``), ``cleanupIntervalInSeconds`` (how often expired rows are deleted; default
3600, ``<= 0``: only at start), plus ``keyPrefix`` and ``ttlInSeconds`` of every store.

Row: ``id`` (primary key, ``utf8mb4_bin``: keys are exact, case and accents included),
``value`` LONGBLOB (the bytes as written, returned unchanged), ``doc`` JSON (the value parsed
when it is a JSON document, NULL otherwise: queries run on it), ``isbinary``, ``eTag`` (a
random UUID per write, as Dapr's MySQL store: never reused), ``expiredate`` (UTC; NULL: never),
``insertdate``, ``updatedate``. Expired rows are invisible at once and deleted periodically.

Each etag or first-write check is part of its write statement (``UPDATE ... WHERE eTag = %s``,
``INSERT ... ON DUPLICATE KEY UPDATE`` that only replaces an expired row); bulk writes and
transactions run in one database transaction, so one failed check rolls all of them back.
Queries (QUERY_API) are one statement over ``doc``: see :mod:`.sql_query`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.mysql_client import TABLE_NAME, MySQLClient, MySQLSettings
from pylotto.components.state.base import (
    BatchStateStore,
    BulkGetItem,
    Concurrency,
    Consistency,
    Feature,
    GetResult,
    SetRequest,
    StateSettings,
    TransactionOp,
    expiry_metadata,
)
from pylotto.components.state.postgresql import json_document
from pylotto.components.state.query import (
    Query,
    QueryableStateStore,
    QueryItem,
    QueryResult,
    encode_offset_token,
)
from pylotto.components.state.sql_query import MySQLQueryBuilder
from pylotto.errors import EtagInvalid, EtagMismatch, PylottoError
from pylotto.types import Metadata

LIVE = "(expiredate IS NULL OR expiredate > UTC_TIMESTAMP(6))"
EXPIRED = "(expiredate IS NOT NULL AND expiredate <= UTC_TIMESTAMP(6))"


class MySQLStateSettings(StateSettings, MySQLSettings):
    table_name: str = Field("state", alias="tableName", pattern=TABLE_NAME)
    cleanup_interval_in_seconds: float = Field(3600.0, alias="cleanupIntervalInSeconds")


def _etag(value: str, store: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise EtagInvalid(f"state store {store}: invalid etag {value!r}: expected a UUID") \
            from None


class MySQLStateStore(BatchStateStore, QueryableStateStore):
    Settings = MySQLStateSettings
    settings: MySQLStateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL, Feature.QUERY_API})

    def __init__(self, name: str, settings: MySQLStateSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = MySQLClient(settings, f"state store {name}")
        self.table = f"`{settings.table_name}`"
        self._cleanup: asyncio.Task[None] | None = None

    async def init(self) -> None:
        await self.client.open([
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            "id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, "
            "value LONGBLOB NOT NULL, doc JSON NULL, isbinary BOOLEAN NOT NULL, "
            "eTag VARCHAR(36) NOT NULL, expiredate DATETIME(6) NULL, "
            "insertdate DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), "
            "updatedate DATETIME(6) NULL, INDEX (expiredate)) "
            "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ])
        await self.delete_expired()
        if self.settings.cleanup_interval_in_seconds > 0:
            self._cleanup = asyncio.create_task(
                self._cleanup_loop(self.settings.cleanup_interval_in_seconds))

    async def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleanup
            self._cleanup = None
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()

    async def _cleanup_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.delete_expired()
            except PylottoError as exc:
                self.context.logger.warning("deleting expired state failed: %s", exc.message)

    async def delete_expired(self) -> int:
        return await self.client.execute(f"DELETE FROM {self.table} WHERE {EXPIRED}")

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        rows = await self.client.fetchall(
            f"SELECT value, eTag, expiredate FROM {self.table} WHERE id = %s AND {LIVE}", (key,))
        if not rows:
            return None
        value, etag, expiry = rows[0]
        return GetResult(bytes(value), etag, _expiry(expiry))

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        if not keys:
            return []
        unique = list(dict.fromkeys(keys))
        marks = ", ".join(["%s"] * len(unique))
        rows = await self.client.fetchall(
            f"SELECT id, value, eTag, expiredate FROM {self.table} "
            f"WHERE id IN ({marks}) AND {LIVE}", unique)
        found = {row[0]: row for row in rows}
        items = []
        for key in keys:
            row = found.get(key)
            items.append(BulkGetItem(key) if row is None else
                         BulkGetItem(key, bytes(row[1]), row[2], metadata=_expiry(row[3])))
        return items

    async def query(self, query: Query, metadata: Metadata) -> QueryResult:
        compiled = MySQLQueryBuilder().compile(query, table=self.table, live=LIVE,
                                               document="doc IS NOT NULL")
        rows = await self.client.fetchall(compiled.sql, compiled.args)
        more = bool(compiled.limit) and len(rows) > compiled.limit
        if more:
            rows = rows[: compiled.limit]
        items = [QueryItem(row[0], bytes(row[1]), row[2]) for row in rows]
        token = encode_offset_token(compiled.offset + len(rows)) if more else ""
        return QueryResult(items=items, token=token)

    # ---- writes ----------------------------------------------------------------------------

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        if not operations:
            return
        etags = [None if op.etag is None else _etag(op.etag, self.name) for op in operations]
        async with self.client.cursor(transaction=len(operations) > 1) as cursor:
            for op, etag in zip(operations, etags, strict=True):
                if isinstance(op, SetRequest):
                    await self._set(cursor, op, etag)
                else:
                    await self._delete(cursor, op.key, etag)

    def _ttl(self, request: SetRequest) -> int | None:
        ttl = self.settings.ttl_in_seconds if request.ttl_seconds is None else request.ttl_seconds
        return ttl if ttl is not None and ttl > 0 else None

    async def _set(self, cursor: Any, op: SetRequest, etag: str | None) -> None:
        document = json_document(op.value)
        ttl = self._ttl(op)
        expiry = "NULL" if ttl is None else f"UTC_TIMESTAMP(6) + INTERVAL {int(ttl)} SECOND"
        new_etag = str(uuid.uuid4())
        if etag is not None:
            changed = await cursor.execute(
                f"UPDATE {self.table} SET value = %s, doc = %s, isbinary = %s, eTag = %s, "
                f"expiredate = {expiry}, updatedate = UTC_TIMESTAMP(6) "
                f"WHERE id = %s AND eTag = %s AND {LIVE}",
                (op.value, document, document is None, new_etag, op.key, etag))
            if not changed:
                raise EtagMismatch(
                    f"state store {self.name}: etag mismatch for key {op.key!r}: "
                    f"{op.etag!r} is not the current version (or the key does not exist)")
            return
        replace = "1" if op.concurrency is not Concurrency.FIRST_WRITE else EXPIRED
        changed = await cursor.execute(
            f"INSERT INTO {self.table} (id, value, doc, isbinary, eTag, expiredate) "
            f"VALUES (%s, %s, %s, %s, %s, {expiry}) ON DUPLICATE KEY UPDATE "
            f"insertdate = IF({replace}, IF({EXPIRED}, UTC_TIMESTAMP(6), insertdate), "
            "insertdate), "
            f"updatedate = IF({replace}, UTC_TIMESTAMP(6), updatedate), "
            f"value = IF({replace}, VALUES(value), value), "
            f"doc = IF({replace}, VALUES(doc), doc), "
            f"isbinary = IF({replace}, VALUES(isbinary), isbinary), "
            f"eTag = IF({replace}, VALUES(eTag), eTag), "
            # last: the conditions above read the row's old expiry
            f"expiredate = IF({replace}, VALUES(expiredate), expiredate)",
            (op.key, op.value, document, document is None, new_etag))
        if not changed:  # 0: the row exists, is live, and first-write kept it
            raise EtagMismatch(f"state store {self.name}: first-write: key {op.key!r} exists "
                               "and no etag was given")

    async def _delete(self, cursor: Any, key: str, etag: str | None) -> None:
        if etag is None:
            await cursor.execute(f"DELETE FROM {self.table} WHERE id = %s", (key,))
            return
        deleted = await cursor.execute(
            f"DELETE FROM {self.table} WHERE id = %s AND eTag = %s AND {LIVE}", (key, etag))
        if not deleted:
            raise EtagMismatch(f"state store {self.name}: etag mismatch for key {key!r}: "
                               f"{etag!r} is not the current version (or the key does not "
                               "exist)")


def _expiry(when: datetime | None) -> dict[str, str]:
    return expiry_metadata(None if when is None else when.replace(tzinfo=UTC).timestamp())
