"""``postgresql``: a state store in one PostgreSQL table, shared by every sidecar using it.

Metadata (Dapr's names): ``connectionString``, ``timeout`` / ``timeoutInSeconds``, ``maxConns``,
``minConns`` (see :mod:`pylotto.components._backends.postgres_client`), ``tableName`` (default
``state``, ``schema.table`` allowed), ``cleanupIntervalInSeconds`` (how often expired rows are
deleted; default 3600, ``<= 0``: only at start; with several sidecars on one table, one of them per
interval: see :mod:`.sql_cleanup`), plus ``keyPrefix`` and ``ttlInSeconds`` of every store.

Row: ``key`` (primary key), ``value`` JSONB — the value parsed when it is a JSON document, NULL
when it is not (so JSON values can be queried with JSONB operators) — ``raw`` BYTEA, the bytes
exactly as written (reads return these, so every value round-trips byte for byte, whitespace and
key order included), ``isbinary`` (true when ``value`` is NULL), ``etag`` BIGINT from a sequence
(never reused, even by several sidecars), ``expiredate`` (NULL: never), ``insertdate`` and
``updatedate``. Expired rows are invisible at once and deleted by the periodic cleanup.

Queries (QUERY_API) run as one statement over the JSONB column: see
:mod:`pylotto.components.state.sql_query`.

Each etag check is part of the write statement itself (``UPDATE ... WHERE etag = $n``,
``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired``); bulk writes and ``multi`` run in one
transaction, so one failed check rolls all of them back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field

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
    parse_int_etag,
)
from pylotto.components.state.query import (
    Query,
    QueryableStateStore,
    QueryItem,
    QueryResult,
    encode_offset_token,
)
from pylotto.components.state.sql_cleanup import LAST_CLEANUP, META_SUFFIX, ExpirySweeper
from pylotto.components.state.sql_query import PostgresQueryBuilder
from pylotto.core.errors import EtagMismatch
from pylotto.core.types import Metadata

LIVE = "(expiredate IS NULL OR expiredate > now())"
LIVE_T = "(t.expiredate IS NULL OR t.expiredate > now())"


class PostgresStateSettings(StateSettings, PostgresSettings):
    table_name: str = Field("state", alias="tableName", pattern=TABLE_NAME)
    cleanup_interval_in_seconds: float = Field(3600.0, alias="cleanupIntervalInSeconds")


def json_document(value: bytes) -> str | None:
    """The value as JSON text PostgreSQL accepts into JSONB, or None when it is not JSON."""
    try:
        text = value.decode("utf-8")
        parsed = json.loads(text, parse_constant=_reject_constant)
        normal = json.dumps(parsed, ensure_ascii=False)
        normal.encode("utf-8")  # lone surrogates (\ud800) are not valid in JSONB
    except (UnicodeError, ValueError, RecursionError):
        return None
    if _has_nul(parsed):  # JSONB refuses \u0000
        return None
    return normal


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class PostgresStateStore(ClientComponent[PostgresClient], BatchStateStore, QueryableStateStore,
                         KeyListingStateStore):
    Settings = PostgresStateSettings
    settings: PostgresStateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL, Feature.QUERY_API})
    refused_in_keys = "\x00"  # the key column is TEXT, which cannot hold NUL

    def __init__(
        self, name: str, settings: PostgresStateSettings, context: ComponentContext
    ) -> None:
        super().__init__(name, settings, context)
        self.client = PostgresClient(settings, f"state store {name}")
        self.table = quote_table(settings.table_name)
        self._sequence = quote_table(f"{settings.table_name}_etag")
        self._index = quote_table(f"{settings.table_name}_expiredate").split(".")[-1]
        self._meta = quote_table(f"{settings.table_name}{META_SUFFIX}")
        self._sweeper = ExpirySweeper(settings.cleanup_interval_in_seconds, self._claim_sweep,
                                      self.delete_expired, context.logger)

    # ---- lifecycle -----------------------------------------------------------------------

    async def init(self) -> None:
        await self.client.open([
            f"CREATE SEQUENCE IF NOT EXISTS {self._sequence}",
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            "key TEXT NOT NULL PRIMARY KEY, value JSONB, raw BYTEA NOT NULL, "
            "isbinary BOOLEAN NOT NULL, etag BIGINT NOT NULL, expiredate TIMESTAMPTZ, "
            "insertdate TIMESTAMPTZ NOT NULL DEFAULT now(), updatedate TIMESTAMPTZ)",
            f"CREATE INDEX IF NOT EXISTS {self._index} ON {self.table} (expiredate) "
            "WHERE expiredate IS NOT NULL",
            f"CREATE TABLE IF NOT EXISTS {self._meta} "
            "(key TEXT NOT NULL PRIMARY KEY, value TIMESTAMPTZ NOT NULL)",
        ])
        await self._sweeper.start()

    async def close(self) -> None:
        await self._sweeper.close()
        await super().close()

    async def _claim_sweep(self, min_age: float) -> bool:
        """Mark the last-cleanup row "now" if it is ``min_age`` seconds old (or missing)."""
        status = await self.client.execute(
            f"INSERT INTO {self._meta} AS m (key, value) VALUES ($1, now()) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value "
            "WHERE m.value <= now() - make_interval(secs => $2)", LAST_CLEANUP, min_age)
        return int(status.split()[-1]) > 0

    async def delete_expired(self) -> int:
        """Delete the rows whose TTL has passed; returns how many."""
        status = await self.client.execute(
            f"DELETE FROM {self.table} WHERE expiredate IS NOT NULL AND expiredate <= now()"
        )
        return int(status.split()[-1])

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        row = await self.client.fetchrow(
            f"SELECT raw, etag, expiredate FROM {self.table} WHERE key = $1 AND {LIVE}", key
        )
        if row is None:
            return None
        return GetResult(bytes(row["raw"]), str(row["etag"]), _expiry(row["expiredate"]))

    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        # left(): the table's collation may not order keys by code point, so no range scan
        rows = await self.client.fetch(
            f"SELECT key FROM {self.table} WHERE left(key, char_length($1)) = $1 AND {LIVE} "
            "ORDER BY key LIMIT $2", prefix, limit)
        return [str(row["key"]) for row in rows]

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        """One query for every key."""
        if not keys:
            return []
        rows = await self.client.fetch(
            f"SELECT key, raw, etag, expiredate FROM {self.table} "
            f"WHERE key = ANY($1::text[]) AND {LIVE}",
            list(dict.fromkeys(keys)),
        )
        found = {row["key"]: row for row in rows}
        items = []
        for key in keys:
            row = found.get(key)
            if row is None:
                items.append(BulkGetItem(key))
            else:
                items.append(BulkGetItem(key, bytes(row["raw"]), str(row["etag"]),
                                         metadata=_expiry(row["expiredate"])))
        return items

    async def query(self, query: Query, metadata: Metadata) -> QueryResult:
        """Filter, sort and page in one statement over the JSONB column."""
        compiled = PostgresQueryBuilder().compile(query, table=self.table, live=LIVE,
                                                  document="value IS NOT NULL")
        rows = await self.client.fetch(compiled.sql, *compiled.args)
        more = bool(compiled.limit) and len(rows) > compiled.limit
        if more:
            rows = rows[: compiled.limit]
        items = [QueryItem(row["key"], bytes(row["raw"]), str(row["etag"])) for row in rows]
        token = encode_offset_token(compiled.offset + len(rows)) if more else ""
        return QueryResult(items=items, token=token)

    # ---- writes ----------------------------------------------------------------------------

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        """Run ``operations`` in one transaction; any failure rolls every one of them back."""
        if not operations:
            return
        # Parse every etag first: a malformed one fails the batch before any I/O.
        etags = [None if op.etag is None else parse_int_etag(op.etag, self.name)
                 for op in operations]
        checked = [(op, etag) for op, etag in zip(operations, etags, strict=True)
                   if etag is not None]
        batched = len(operations) > 1 and len(checked) == len(operations) \
            and len({op.key for op in operations}) == len(operations)
        async with self.client.connection() as conn, conn.transaction():
            if batched:  # compare-and-set of every one: one statement for the saves, one
                # for the deletes (a batch of N, 2 round trips instead of N)
                await self._set_checked(conn, [(op, etag) for op, etag in checked
                                               if isinstance(op, SetRequest)])
                await self._delete_checked(conn, [(op, etag) for op, etag in checked
                                                  if isinstance(op, DeleteRequest)])
                return
            for op, etag in zip(operations, etags, strict=True):
                if isinstance(op, SetRequest):
                    await self._set(conn, op, etag)
                else:
                    await self._delete(conn, op, etag)

    def _mismatch(self, ops: Sequence[tuple[TransactionOp, Any]], applied: set[str]) -> None:
        for op, _ in ops:
            if op.key not in applied:
                raise EtagMismatch(
                    f"state store {self.name}: etag mismatch for key {op.key!r}: "
                    f"{op.etag!r} is not the current version (or the key does not exist)"
                )

    async def _set_checked(self, conn: Any, ops: list[tuple[SetRequest, int]]) -> None:
        """Saves, each under its etag, in one ``UPDATE ... FROM unnest(...)``; EtagMismatch
        (naming the first that did not match) when one of them was not applied."""
        if not ops:
            return
        documents = [json_document(op.value) for op, _ in ops]
        rows = await conn.fetch(
            f"UPDATE {self.table} AS t SET value = u.value, raw = u.raw, "
            f"isbinary = u.isbinary, etag = nextval('{self._sequence}'), expiredate = "
            "CASE WHEN u.ttl IS NULL THEN NULL ELSE now() + make_interval(secs => u.ttl) END, "
            "updatedate = now() FROM unnest($1::text[], $2::jsonb[], $3::bytea[], "
            "$4::boolean[], $5::bigint[], $6::bigint[]) AS u(key, value, raw, isbinary, ttl, "
            f"etag) WHERE t.key = u.key AND t.etag = u.etag AND {LIVE_T} RETURNING t.key",
            [op.key for op, _ in ops], documents, [op.value for op, _ in ops],
            [document is None for document in documents], [self._ttl(op) for op, _ in ops],
            [etag for _, etag in ops],
        )
        self._mismatch(ops, {row["key"] for row in rows})

    async def _delete_checked(self, conn: Any, ops: list[tuple[DeleteRequest, int]]) -> None:
        """Deletes, each under its etag, in one statement (as :meth:`_set_checked`)."""
        if not ops:
            return
        rows = await conn.fetch(
            f"DELETE FROM {self.table} AS t USING unnest($1::text[], $2::bigint[]) "
            f"AS u(key, etag) WHERE t.key = u.key AND t.etag = u.etag AND {LIVE_T} "
            "RETURNING t.key", [op.key for op, _ in ops], [etag for _, etag in ops],
        )
        self._mismatch(ops, {row["key"] for row in rows})

    def _ttl(self, request: SetRequest) -> int | None:
        ttl = self.settings.ttl_in_seconds if request.ttl_seconds is None else request.ttl_seconds
        return ttl if ttl is not None and ttl > 0 else None

    async def _set(self, conn: Any, op: SetRequest, etag: int | None) -> None:
        document = json_document(op.value)
        args = (op.key, document, op.value, document is None, self._ttl(op))
        expiry = "CASE WHEN $5::bigint IS NULL THEN NULL ELSE now() + make_interval(secs => $5) END"
        if etag is not None:
            row = await conn.fetchrow(
                f"UPDATE {self.table} SET value = $2::jsonb, raw = $3, isbinary = $4, "
                f"etag = nextval('{self._sequence}'), expiredate = {expiry}, "
                f"updatedate = now() WHERE key = $1 AND etag = $6 AND {LIVE} RETURNING etag",
                *args, etag,
            )
            if row is None:
                raise EtagMismatch(
                    f"state store {self.name}: etag mismatch for key {op.key!r}: "
                    f"{op.etag!r} is not the current version (or the key does not exist)"
                )
            return
        insert = (
            f"INSERT INTO {self.table} AS t (key, value, raw, isbinary, etag, expiredate) "
            f"VALUES ($1, $2::jsonb, $3, $4, nextval('{self._sequence}'), {expiry}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, raw = excluded.raw, "
            "isbinary = excluded.isbinary, etag = excluded.etag, "
            "expiredate = excluded.expiredate, insertdate = CASE WHEN "
            "t.expiredate IS NOT NULL AND t.expiredate <= now() THEN now() "
            "ELSE t.insertdate END, updatedate = now()"
        )
        if op.concurrency is Concurrency.FIRST_WRITE:
            row = await conn.fetchrow(
                f"{insert} WHERE t.expiredate IS NOT NULL AND t.expiredate <= now() "
                "RETURNING t.etag", *args,
            )
            if row is None:
                raise EtagMismatch(
                    f"state store {self.name}: first-write: key {op.key!r} exists "
                    "and no etag was given"
                )
            return
        await conn.execute(insert, *args)

    async def _delete(self, conn: Any, op: DeleteRequest, etag: int | None) -> None:
        if etag is None:
            await conn.execute(f"DELETE FROM {self.table} WHERE key = $1", op.key)
            return
        row = await conn.fetchrow(
            f"DELETE FROM {self.table} WHERE key = $1 AND etag = $2 AND {LIVE} RETURNING key",
            op.key, etag,
        )
        if row is None:
            raise EtagMismatch(
                f"state store {self.name}: etag mismatch for key {op.key!r}: "
                f"{op.etag!r} is not the current version (or the key does not exist)"
            )


def _expiry(when: datetime | None) -> dict[str, str]:
    return expiry_metadata(None if when is None else when.timestamp())
