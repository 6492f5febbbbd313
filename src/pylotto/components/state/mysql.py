"""``mysql``: a state store in one MySQL / MariaDB table, shared by every sidecar using it.

Metadata (Dapr's names): ``connectionString``, ``schemaName``, ``timeout`` / ``timeoutInSeconds``,
``maxConns``, ``minConns`` (see :mod:`pylotto.components._backends.mysql_client`), ``tableName``
(default ``state``), ``cleanupIntervalInSeconds`` (how often expired rows are deleted; default 3600,
``<= 0``: only at start; with several sidecars on one table, one of them per interval: see
:mod:`.sql_cleanup`), plus ``keyPrefix`` and ``ttlInSeconds`` of every store.

Row: ``id`` VARCHAR(255) primary key in a binary NO PAD collation (``utf8mb4_nopad_bin`` on
MariaDB, ``utf8mb4_0900_bin`` on MySQL 8: keys are exact — case, accents and trailing spaces
count), ``value`` LONGBLOB (the bytes as written, returned unchanged), ``doc`` JSON (the value
parsed, when it is a JSON document the server can hold; queries run on it), ``isbinary`` (the
value is not JSON at all), ``eTag`` BIGINT (never reused: ``NEXTVAL`` of the sequence
``<tableName>_etag`` on MariaDB; elsewhere ids reserved from the one-row counter table
``<tableName>_etag`` with ``LAST_INSERT_ID(id + n)`` in their own committed statement),
``expiredate`` (UTC; NULL: never), ``insertdate``, ``updatedate`` (UTC). Expired rows are
invisible at once and deleted by the periodic cleanup.

Writes: each etag or first-write check is part of its write statement (``UPDATE ... WHERE
eTag = %s``; ``INSERT ... ON DUPLICATE KEY UPDATE`` whose assignments only replace an expired
row for first-write), judged by the rows it changed. Bulk writes and transactions run in one
database transaction, so one failed check rolls all of them back.

Queries (QUERY_API) compile to one statement over ``doc`` (:mod:`.sql_query`: JSON_EXTRACT /
JSON_TYPE, type-exact comparisons, ORDER BY the JSON paths then ``id``, LIMIT/OFFSET). SQL
cannot match the reference semantics of :mod:`.query` in three corners; a query touching one
(an ``EXISTS`` probe before each query tells) is narrowed in SQL and finished in Python with
``sort_and_filter_sequence``, so results are always exact: numeric bounds of 2^53 or more (SQL
compares doubles), sorting on paths where a candidate holds an object, an array or a number of
2^53 or more, and JSON values MariaDB cannot store as JSON (``NaN``, lone surrogates, nesting
deeper than 31 levels) — kept with ``doc`` NULL and ``isbinary`` false.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from pylotto.components._backends.mysql_client import (
    MAX_KEY_LENGTH,
    TABLE_NAME,
    MySQLClient,
    MySQLSettings,
)
from pylotto.components.base import ClientComponent, ComponentContext
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
    etag_number,
    expiry_metadata,
    prefix_end,
)
from pylotto.components.state.query import (
    And,
    Filter,
    In,
    Or,
    Path,
    Query,
    QueryableStateStore,
    QueryItem,
    QueryResult,
    encode_offset_token,
    sort_and_filter_sequence,
)
from pylotto.components.state.sql_cleanup import LAST_CLEANUP, META_SUFFIX, ExpirySweeper
from pylotto.components.state.sql_query import MySQLQueryBuilder
from pylotto.core.errors import EtagMismatch, Internal, InvalidArgument
from pylotto.core.types import Metadata

LIVE = "(expiredate IS NULL OR expiredate > UTC_TIMESTAMP(6))"
EXPIRED = "(expiredate IS NOT NULL AND expiredate <= UTC_TIMESTAMP(6))"
MAX_JSON_DEPTH = 31
"""Deepest nesting MariaDB accepts in a JSON column (MySQL: 100)."""
CLEANUP_BATCH = 1000
"""Expired rows deleted per cleanup statement."""
MAX_TTL = 10**10
"""TTLs are capped here (~317 years) so the expiry stays a valid DATETIME."""
EXACT_NUMBERS = 2**53
"""Below this magnitude every integer is exact as a double, so SQL compares like Python."""
JSON_REFUSED = frozenset({4025, 3140})
"""The server refused a document: MariaDB's CHECK (json_valid), MySQL's invalid JSON text."""
_LIKE_SPECIAL = re.compile(r"([!%_])")


class MySQLStateSettings(StateSettings, MySQLSettings):
    table_name: str = Field("state", alias="tableName", pattern=TABLE_NAME)
    cleanup_interval_in_seconds: float = Field(3600.0, alias="cleanupIntervalInSeconds")


def json_document(value: bytes) -> tuple[str | None, bool]:
    """``(doc, is_json)``: the value as JSON text for the ``doc`` column (None when the server
    could not hold it), and whether it is JSON at all — decoded exactly as the reference
    evaluator decodes it (``json.loads`` of the bytes)."""
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, False
    if _depth(parsed) > MAX_JSON_DEPTH:
        return None, True
    try:
        text = json.dumps(parsed, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # lone surrogates ("\ud800") are not UTF-8
    except (ValueError, UnicodeEncodeError, RecursionError):
        return None, True
    return text, True


def _depth(value: Any) -> int:
    """How many objects / arrays nest inside one another (a scalar: 0)."""
    depth, level = 0, [value]
    while True:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            return depth
        depth += 1
        level = [child for item in containers
                 for child in (item.values() if isinstance(item, dict) else item)]


@dataclass(frozen=True, slots=True)
class _Write:
    op: TransactionOp
    etag: int | None
    doc: str | None = None
    is_json: bool = False


class _Compiler(MySQLQueryBuilder):
    """The MySQL dialect of :mod:`.sql_query`, with the key collation of the table, paths
    written as the documents are (non-ASCII names unescaped), MySQL 8's unsigned integers,
    and an index range for the key prefix."""

    _TYPES = {**MySQLQueryBuilder._TYPES,
              "number": "IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')"}

    def __init__(self, collation: str) -> None:
        super().__init__()
        self.binary_collation = f"COLLATE {collation}"

    def _path(self, path: Path) -> str:
        return self.arg("$" + "".join("." + json.dumps(part, ensure_ascii=False)
                                      for part in path))

    def starts_with(self, prefix: str) -> str:
        if not prefix:
            return "TRUE"
        pattern = _LIKE_SPECIAL.sub(r"!\1", prefix) + "%"
        return f"id LIKE {self.arg(pattern)} ESCAPE '!'"

    def inexact_order(self, paths: Sequence[Path]) -> str:
        """SQL true for a row whose value at one of ``paths`` SQL cannot order exactly."""
        terms = [f"{self.is_type(path, 'compound')} OR ({self.is_type(path, 'number')} AND "
                 f"ABS({self.number(path)}) >= {float(EXACT_NUMBERS)!r})" for path in paths]
        return "(" + " OR ".join(terms) + ")"


def _exact_bounds(flt: Filter | None) -> bool:
    """True when every number the filter compares with is below 2^53 in magnitude."""
    if flt is None:
        return True
    if isinstance(flt, And | Or):
        return all(_exact_bounds(child) for child in flt.filters)
    values = flt.values if isinstance(flt, In) else (flt.value,)
    return all(isinstance(v, bool) or not isinstance(v, int | float) or abs(v) < EXACT_NUMBERS
               for v in values)


def _mariadb_sequences(version: str) -> bool:
    """MariaDB 10.3 and later have sequences (``NEXTVAL``)."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return ("mariadb" in version.lower() and match is not None
            and (int(match[1]), int(match[2])) >= (10, 3))


class MySQLStateStore(ClientComponent[MySQLClient], BatchStateStore, QueryableStateStore,
                      KeyListingStateStore):
    Settings = MySQLStateSettings
    settings: MySQLStateSettings
    features = frozenset({Feature.ETAG, Feature.TRANSACTIONAL, Feature.TTL, Feature.QUERY_API})

    def __init__(self, name: str, settings: MySQLStateSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = MySQLClient(settings, f"state store {name}")
        self.table = self.client.table(settings.table_name)
        self._etags = self.client.table(f"{settings.table_name}_etag")
        self._meta = self.client.table(f"{settings.table_name}{META_SUFFIX}")
        self.etag_source: Literal["sequence", "counter"] | None = None
        """Where new etags come from; chosen by :meth:`init` from the server unless set."""
        self._sweeper = ExpirySweeper(settings.cleanup_interval_in_seconds, self._claim_sweep,
                                      self.delete_expired, context.logger)

    # ---- lifecycle -------------------------------------------------------------------------

    async def init(self) -> None:
        await self.client.open()
        if self.etag_source is None:
            sequences = _mariadb_sequences(self.client.server_version)
            self.etag_source = "sequence" if sequences else "counter"
        if self.etag_source == "sequence":
            etags = [f"CREATE SEQUENCE IF NOT EXISTS {self._etags}"]
        else:
            etags = [f"CREATE TABLE IF NOT EXISTS {self._etags} (k TINYINT NOT NULL PRIMARY KEY, "
                     "id BIGINT NOT NULL) ENGINE=InnoDB",
                     f"INSERT IGNORE INTO {self._etags} (k, id) VALUES (0, 0)"]
        try:
            await self.client.run_schema([
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "id VARCHAR(255) CHARACTER SET utf8mb4 "
                f"COLLATE {self.client.key_collation} NOT NULL PRIMARY KEY, "
                "value LONGBLOB NOT NULL, doc JSON NULL, isbinary BOOLEAN NOT NULL, "
                "eTag BIGINT NOT NULL, expiredate DATETIME(6) NULL, "
                "insertdate DATETIME(6) NOT NULL, updatedate DATETIME(6) NULL, "
                "INDEX (expiredate)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                *etags,
                f"CREATE TABLE IF NOT EXISTS {self._meta} (id VARCHAR(64) NOT NULL PRIMARY KEY, "
                "value DATETIME(6) NOT NULL) ENGINE=InnoDB",
            ])
        except BaseException:
            await self.client.close()
            raise
        await self._sweeper.start()
        if self.client.max_allowed_packet < 4 << 20:
            self.context.logger.warning(
                "state store %s: the server's max_allowed_packet is %d bytes: values over "
                "about a quarter of it will be refused", self.name, self.client.max_allowed_packet)

    async def close(self) -> None:
        await self._sweeper.close()
        await super().close()

    async def _claim_sweep(self, min_age: float) -> bool:
        """Mark the last-cleanup row "now" if it is ``min_age`` seconds old (or missing).
        Rows changed: 1 inserted, 2 updated, 0 kept (the IF left the value as it was)."""
        changed = await self.client.execute(
            f"INSERT INTO {self._meta} (id, value) VALUES (%s, UTC_TIMESTAMP(6)) "
            "ON DUPLICATE KEY UPDATE value = IF(value <= UTC_TIMESTAMP(6) - INTERVAL %s "
            "MICROSECOND, VALUES(value), value)", (LAST_CLEANUP, int(min_age * 1e6)))
        return changed > 0

    async def delete_expired(self) -> int:
        """Delete the rows whose TTL has passed, a batch per statement (each within the
        timeout, locking little at a time); returns how many."""
        deleted = 0
        while True:
            batch = await self.client.execute(
                f"DELETE FROM {self.table} WHERE {EXPIRED} LIMIT {CLEANUP_BATCH}")
            deleted += batch
            if batch < CLEANUP_BATCH:
                break
        return deleted

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, key: str, consistency: Consistency, metadata: Metadata) -> GetResult | None:
        rows = await self.client.fetchall(
            f"SELECT value, eTag, expiredate FROM {self.table} WHERE id = %s AND {LIVE}", (key,))
        if not rows:
            return None
        value, etag, expiry = rows[0]
        return GetResult(bytes(value), str(etag), _expiry(expiry))

    async def keys_with_prefix(self, prefix: str, limit: int) -> list[str]:
        rows = await self.client.fetchall(  # id is utf8mb4_bin: code-point order
            f"SELECT id FROM {self.table} WHERE id >= %s AND id < %s AND {LIVE} "
            "ORDER BY id LIMIT %s", (prefix, prefix_end(prefix), limit))
        return [row[0].decode() if isinstance(row[0], bytes) else str(row[0]) for row in rows]

    async def bulk_get(self, keys: Sequence[str], metadata: Metadata) -> list[BulkGetItem]:
        """One query for every key."""
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
                         BulkGetItem(key, bytes(row[1]), str(row[2]), metadata=_expiry(row[3])))
        return items

    async def query(self, query: Query, metadata: Metadata) -> QueryResult:
        """One statement when SQL gives the reference results (nearly always), else the
        candidates narrowed in SQL and finished with the reference evaluator."""
        if not _exact_bounds(query.filter):
            return sort_and_filter_sequence(await self._candidates(query, narrow=False), query)
        collation = self.client.key_collation
        compiled = _Compiler(collation).compile(query, table=self.table, live=LIVE,
                                                document="doc IS NOT NULL")
        check = _Compiler(collation)
        where = f"{LIVE} AND {check.starts_with(query.key_prefix)} AND isbinary = 0"
        risky = ["doc IS NULL"]  # JSON the server could not hold: only Python evaluates it
        if query.sort:
            risky.append(
                "(doc IS NOT NULL"
                + ("" if query.filter is None else f" AND {check.condition(query.filter)}")
                + f" AND {check.inexact_order([key.path for key in query.sort])})")
        inexact = (f"SELECT EXISTS(SELECT 1 FROM {self.table} WHERE {where} "
                   f"AND ({' OR '.join(risky)}))")

        async def run(cursor: Any) -> QueryResult | None:
            await cursor.execute(inexact, check.args)
            (found,) = await cursor.fetchone()
            if found:
                return None
            await cursor.execute(compiled.sql, compiled.args)
            rows = await cursor.fetchall()
            more = bool(compiled.limit) and len(rows) > compiled.limit
            rows = rows[: compiled.limit] if more else rows
            items = [QueryItem(row[0], bytes(row[1]), str(row[2])) for row in rows]
            token = encode_offset_token(compiled.offset + len(rows)) if more else ""
            return QueryResult(items=items, token=token)

        result = await self.client.call(run)
        if result is None:
            result = sort_and_filter_sequence(await self._candidates(query, narrow=True), query)
        return result

    async def _candidates(self, query: Query, narrow: bool) -> list[QueryItem]:
        """Every live JSON row under the key prefix that may match (all of them unless
        ``narrow``: documents are then filtered in SQL, exactly)."""
        sql = _Compiler(self.client.key_collation)
        where = f"{LIVE} AND {sql.starts_with(query.key_prefix)} AND isbinary = 0"
        if narrow and query.filter is not None:
            where += f" AND (doc IS NULL OR {sql.condition(query.filter)})"
        rows = await self.client.fetchall(
            f"SELECT id, value, eTag FROM {self.table} WHERE {where}", sql.args)
        return [QueryItem(row[0], bytes(row[1]), str(row[2])) for row in rows]

    # ---- writes ----------------------------------------------------------------------------

    async def apply(self, operations: Sequence[TransactionOp]) -> None:
        """Run ``operations`` in one transaction; any failure rolls every one of them back."""
        if not operations:
            return
        writes = [self._prepare(op) for op in operations]  # every check before any I/O
        try:
            await self._write(writes)
        except Internal as exc:
            cause = exc.__cause__
            if cause is None or not cause.args or cause.args[0] not in JSON_REFUSED:
                raise
            # A document the server does not take as JSON: keep the values, without documents.
            await self._write([replace(write, doc=None) for write in writes])

    def _prepare(self, op: TransactionOp) -> _Write:
        if len(op.key) > MAX_KEY_LENGTH:
            raise InvalidArgument(f"state store {self.name}: key of {len(op.key)} characters: "
                                  f"at most {MAX_KEY_LENGTH}")
        etag = None if op.etag is None else etag_number(op.etag)
        if op.etag is not None and etag is None:  # contrib compares text: no eTag is that text
            raise EtagMismatch(f"state store {self.name}: etag mismatch for key {op.key!r}: "
                               f"{op.etag!r} is not the current version")
        if not isinstance(op, SetRequest):
            return _Write(op, etag)
        doc, is_json = json_document(op.value)
        size = 2 * (len(op.value) + len((doc or "").encode())) + 1024  # escaping at most doubles
        if size > self.client.max_allowed_packet:
            raise InvalidArgument(
                f"state store {self.name}: the value of key {op.key!r} ({len(op.value)} bytes) "
                f"is too large for the server's max_allowed_packet "
                f"({self.client.max_allowed_packet} bytes)")
        return _Write(op, etag, doc, is_json)

    async def _write(self, writes: list[_Write]) -> None:
        sets = sum(isinstance(write.op, SetRequest) for write in writes)
        reserved = await self._reserve(sets) if self.etag_source == "counter" and sets else []

        async def work(cursor: Any) -> None:  # runs again as a whole after a deadlock
            etags = iter(reserved)
            for write in writes:
                if isinstance(write.op, SetRequest):
                    new = next(etags, None)
                    await self._set(cursor, write, write.op,
                                    f"NEXTVAL({self._etags})" if new is None else str(new))
                else:
                    await self._delete(cursor, write)

        await self.client.call(work, transaction=len(writes) > 1)

    async def _reserve(self, count: int) -> list[int]:
        """``count`` new etags from the counter table, committed before they are used."""

        async def run(cursor: Any) -> list[int]:
            changed = await cursor.execute(
                f"UPDATE {self._etags} SET id = LAST_INSERT_ID(id + %s) WHERE k = 0", (count,))
            if changed != 1:
                raise Internal(f"state store {self.name}: the etag counter row is missing")
            await cursor.execute("SELECT LAST_INSERT_ID()")
            (last,) = await cursor.fetchone()
            return list(range(int(last) - count + 1, int(last) + 1))

        return await self.client.call(run)

    def _ttl(self, request: SetRequest) -> int | None:
        ttl = self.settings.ttl_in_seconds if request.ttl_seconds is None else request.ttl_seconds
        return min(int(ttl), MAX_TTL) if ttl is not None and ttl > 0 else None

    async def _set(self, cursor: Any, write: _Write, op: SetRequest, new_etag: str) -> None:
        ttl = self._ttl(op)
        expiry = "NULL" if ttl is None else f"UTC_TIMESTAMP(6) + INTERVAL {ttl} SECOND"
        if write.etag is not None:
            changed = await cursor.execute(
                f"UPDATE {self.table} SET value = %s, doc = %s, isbinary = %s, eTag = {new_etag}, "
                f"expiredate = {expiry}, updatedate = UTC_TIMESTAMP(6) "
                f"WHERE id = %s AND eTag = %s AND {LIVE}",
                (op.value, write.doc, not write.is_json, op.key, write.etag))
            if not changed:
                raise EtagMismatch(
                    f"state store {self.name}: etag mismatch for key {op.key!r}: "
                    f"{op.etag!r} is not the current version (or the key does not exist)")
            return
        # Assignments run left to right and see earlier ones: expiredate, which the
        # conditions read, comes last.
        first_write = op.concurrency is Concurrency.FIRST_WRITE
        columns = ("updatedate", "value", "doc", "isbinary", "eTag", "expiredate")
        fresh = {"updatedate": "UTC_TIMESTAMP(6)"}
        updates = ", ".join(
            f"{column} = " + (f"IF({EXPIRED}, {fresh.get(column, f'VALUES({column})')}, "
                              f"{column})" if first_write
                              else fresh.get(column, f"VALUES({column})"))
            for column in columns)
        changed = await cursor.execute(
            f"INSERT INTO {self.table} (id, value, doc, isbinary, eTag, expiredate, insertdate) "
            f"VALUES (%s, %s, %s, %s, {new_etag}, {expiry}, UTC_TIMESTAMP(6)) "
            f"ON DUPLICATE KEY UPDATE insertdate = IF({EXPIRED}, UTC_TIMESTAMP(6), insertdate), "
            f"{updates}",
            (op.key, op.value, write.doc, not write.is_json))
        if not changed:  # 0: the row exists, is live, and first-write kept it
            raise EtagMismatch(f"state store {self.name}: first-write: key {op.key!r} exists "
                               "and no etag was given")

    async def _delete(self, cursor: Any, write: _Write) -> None:
        key = write.op.key
        if write.etag is None:
            await cursor.execute(f"DELETE FROM {self.table} WHERE id = %s", (key,))
            return
        deleted = await cursor.execute(
            f"DELETE FROM {self.table} WHERE id = %s AND eTag = %s AND {LIVE}", (key, write.etag))
        if not deleted:
            raise EtagMismatch(f"state store {self.name}: etag mismatch for key {key!r}: "
                               f"{write.op.etag!r} is not the current version (or the key does "
                               "not exist)")


def _expiry(when: datetime | None) -> dict[str, str]:
    return expiry_metadata(None if when is None else when.replace(tzinfo=UTC).timestamp())
