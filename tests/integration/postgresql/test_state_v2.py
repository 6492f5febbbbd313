"""``state.postgresql`` ``version: v2``: components-contrib ``state/postgresql/v2``'s layout on
the real server — its tables, metadata rows and migrations, UUID etags — so that pylotto and
daprd sidecars can share one table (the behaviour every store shares: the state conformance
suite's ``postgresql-v2`` case)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from pylotto.components.base import ComponentContext
from pylotto.components.state.base import Concurrency, Consistency, DeleteRequest, SetRequest
from pylotto.components.state.postgresql import PostgresStateStore
from pylotto.components.state.postgresql_v2 import PostgresV2StateStore
from pylotto.core.errors import ConfigError, EtagMismatch
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.integration.postgresql.conftest import DSN
from tests.support.servers import require

Builder = Callable[..., AbstractAsyncContextManager[PostgresV2StateStore]]
U = Consistency.UNSPECIFIED


@pytest.fixture
async def v2(prefix: str, tmp_path: Path) -> AsyncIterator[Builder]:
    """``async with v2(**metadata) as store``: a v2 store on the test's own tables."""
    require("postgresql")

    @asynccontextmanager
    async def make(**metadata: Any) -> AsyncIterator[PostgresV2StateStore]:
        meta = {"connectionString": DSN, "tablePrefix": f"{prefix}_",
                "metadataTableName": f"{prefix}_dapr_metadata", **metadata}
        cls = resolve("state", "state.postgresql", "v2")
        store = cls("pg2", decode(cls.Settings, meta, component="state.pg2"), ComponentContext(
            app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.pg2")))
        assert isinstance(store, PostgresV2StateStore)
        await store.init()
        try:
            yield store
        finally:
            await store.close()

    yield make
    from tests.integration.postgresql.conftest import drop

    await drop(prefix)


async def _sql(query: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(DSN)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def test_the_version_picks_the_class() -> None:
    assert resolve("state", "state.postgresql", "v2") is PostgresV2StateStore
    assert resolve("state", "postgresql", "v1") is PostgresStateStore
    assert resolve("state", "state.postgresql", "") is PostgresStateStore
    with pytest.raises(ConfigError, match="unknown state component type"):
        resolve("state", "postgresql/v2")  # a version is not part of the type name


async def test_contribs_tables_and_metadata_rows(v2: Builder, prefix: str) -> None:
    async with v2() as store:
        await store.set(SetRequest("k", b"\x00\xffraw"))
        columns = await _sql(
            "SELECT column_name, data_type, is_nullable, is_identity FROM "
            "information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
            f"{prefix}_state")
        assert [tuple(row) for row in columns] == [
            ("key", "text", "NO", "NO"), ("value", "bytea", "NO", "NO"),
            ("etag", "uuid", "NO", "NO"),
            ("created_at", "timestamp with time zone", "NO", "NO"),
            ("updated_at", "timestamp with time zone", "YES", "NO"),
            ("expires_at", "timestamp with time zone", "YES", "NO"),
            ("row_id", "bigint", "NO", "YES")]
        rows = await _sql(f'SELECT key, value FROM "{prefix}_dapr_metadata" ORDER BY key')
        meta = {row["key"]: row["value"] for row in rows}
        assert meta["lock"] == "lock"
        assert meta[f"migrations-state-v2-{prefix}_"] == "2"
        assert f"last-cleanup-state-v2-{prefix}_" in meta  # swept on start
        (row,) = await _sql(f'SELECT value, etag FROM "{prefix}_state" WHERE key = $1', "k")
        assert bytes(row["value"]) == b"\x00\xffraw"
        got = await store.get("k", U, {})
        assert got is not None and got.etag == str(row["etag"])
        assert str(uuid.UUID(got.etag)) == got.etag  # a UUID in its canonical text


async def test_etags_are_new_uuids_and_text_that_is_none_is_a_mismatch(v2: Builder) -> None:
    async with v2() as store:
        await store.set(SetRequest("k", b"1"))
        first = await store.get("k", U, {})
        assert first is not None and first.etag is not None
        await store.set(SetRequest("k", b"2", etag=first.etag.upper()))  # uuid.Parse's forms
        second = await store.get("k", U, {})
        assert second is not None and second.etag not in (None, first.etag)
        for etag in (first.etag, "1", "not-a-uuid"):  # stale, numeric, neither: ABORTED
            with pytest.raises(EtagMismatch):
                await store.set(SetRequest("k", b"3", etag=etag))
            with pytest.raises(EtagMismatch):
                await store.delete(DeleteRequest("k", etag=etag))
        with pytest.raises(EtagMismatch):  # first-write on a live row
            await store.set(SetRequest("k", b"3", concurrency=Concurrency.FIRST_WRITE))
        await store.delete(DeleteRequest("k", etag=second.etag))
        assert await store.get("k", U, {}) is None


async def test_a_level_one_table_daprd_left_is_migrated(v2: Builder, prefix: str) -> None:
    """A table at contrib's migration 1 (no row_id), with rows: pylotto adds row_id as
    migration 2 does — numbered by (created_at, key), an identity going on from there."""
    await _sql(f'CREATE TABLE "{prefix}_dapr_metadata" (key text NOT NULL PRIMARY KEY, '
               "value text NOT NULL)")
    await _sql(f'INSERT INTO "{prefix}_dapr_metadata" VALUES ($1, $2)',
               f"migrations-state-v2-{prefix}_", "1")
    await _sql(f'CREATE TABLE "{prefix}_state" (key text NOT NULL PRIMARY KEY, '
               "value bytea NOT NULL, etag uuid NOT NULL DEFAULT gen_random_uuid(), "
               "created_at timestamp with time zone NOT NULL DEFAULT now(), "
               "updated_at timestamp with time zone, expires_at timestamp with time zone)")
    await _sql(f'INSERT INTO "{prefix}_state" (key, value, created_at) VALUES '
               "('b', 'x', now() - interval '2 hours'), ('a', 'y', now() - interval '1 hour')")
    async with v2() as store:
        got = await store.get("b", U, {})
        assert got is not None and got.value == b"x"
        await store.set(SetRequest("c", b"z"))
        rows = await _sql(f'SELECT key, row_id FROM "{prefix}_state" ORDER BY row_id')
        assert [(r["key"], r["row_id"]) for r in rows] == [("b", 1), ("a", 2), ("c", 3)]
    (level,) = await _sql(f'SELECT value FROM "{prefix}_dapr_metadata" WHERE key = $1',
                          f"migrations-state-v2-{prefix}_")
    assert level["value"] == "2"


async def test_two_sidecars_starting_at_once_migrate_once(v2: Builder, prefix: str) -> None:
    async with v2() as one, v2() as two:
        await one.set(SetRequest("k", b"1"))
        got = await two.get("k", U, {})
        assert got is not None and got.value == b"1"
    async def start() -> None:
        async with v2():
            pass
    await asyncio.gather(*(start() for _ in range(4)))
    indexes = await _sql("SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1",
                         f"{prefix}_state")
    assert [r["indexname"] for r in indexes] == [
        f"{prefix}_state_expires_at_idx", f"{prefix}_state_pkey", f"{prefix}_state_row_id_uidx"]


async def test_metadata_keys(v2: Builder, prefix: str) -> None:
    cls = PostgresV2StateStore.Settings
    settings = decode(cls, {"connectionString": DSN}, component="state.x")
    assert (settings.call_timeout, settings.state_table, settings.metadata_table,
            settings.cleanup_seconds) == (20.0, "state", "dapr_metadata", 3600.0)
    settings = decode(cls, {"connectionString": DSN, "timeoutInSeconds": "5",
                            "tablePrefix": "Shop.Orders_", "cleanupInterval": "-1"},
                      component="state.x")
    assert (settings.call_timeout, settings.state_table, settings.cleanup_seconds) == (
        5.0, "shop.orders_state", 0.0)  # folded as PostgreSQL folds contrib's names
    assert decode(cls, {"connectionString": DSN, "cleanupIntervalInSeconds": "90"},
                  component="state.x").cleanup_seconds == 90.0
    with pytest.raises(ConfigError, match="must be greater than 1s"):
        decode(cls, {"connectionString": DSN, "timeout": "500ms"}, component="state.x")
    with pytest.raises(ConfigError, match=r"tablePrefix.*bad-name"):
        decode(cls, {"connectionString": DSN, "tablePrefix": "bad-name"}, component="state.x")
    async with v2(cleanupInterval="0") as store:  # no cleanup: contrib runs no collector
        assert store._sweeper is None
        rows = await _sql(f'SELECT key FROM "{prefix}_dapr_metadata"')
        assert f"last-cleanup-state-v2-{prefix}_" not in {r["key"] for r in rows}
