"""What only the sqlite store does: a file that outlives the process, shared by sidecars."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.state import StateItem
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.components.state.sqlite import BULK_CHUNK, SqliteStateStore
from pylotto.core.errors import ConfigError, EtagMismatch, Unavailable
from pylotto.core.metadata import decode
from tests.unit.state.support import capability


@pytest.fixture
async def opened() -> AsyncIterator[list[SqliteStateStore]]:
    stores: list[SqliteStateStore] = []
    yield stores
    for store in stores:
        await store.close()


async def open_store(opened: list[SqliteStateStore], data_dir: Path, name: str = "db",
                     app_id: str = "app", **metadata: Any) -> SqliteStateStore:
    settings = decode(SqliteStateStore.Settings, metadata, component=f"state.{name}")
    assert isinstance(settings, SqliteStateStore.Settings)
    store = SqliteStateStore(name, settings, ComponentContext(app_id, data_dir))
    await store.init()
    opened.append(store)
    return store


def rows(path: Path, table: str = "state") -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT key, value FROM {table} ORDER BY key").fetchall()


async def test_default_file_is_under_the_data_dir(tmp_path: Path,
                                                  opened: list[SqliteStateStore]) -> None:
    store = await open_store(opened, tmp_path, "orders")
    await store.set(SetRequest("k", b"v"))
    assert store.target == str(tmp_path / "state-orders.db")
    assert rows(tmp_path / "state-orders.db") == [("k", b"v")]


async def test_connection_string_paths(tmp_path: Path, opened: list[SqliteStateStore]) -> None:
    relative = await open_store(opened, tmp_path, connectionString="sub/rel.db")
    assert relative.target == str(tmp_path / "sub" / "rel.db")
    absolute = await open_store(opened, tmp_path, connectionString=str(tmp_path / "abs.db"),
                                tableName="things")
    await absolute.set(SetRequest("k", b"v"))
    assert rows(tmp_path / "abs.db", "things") == [("k", b"v")]
    memory = await open_store(opened, tmp_path, connectionString=":memory:")
    await memory.set(SetRequest("k", b"v"))
    assert (await memory.get("k", Consistency.UNSPECIFIED, {})) is not None


async def test_data_and_etags_survive_close_and_reopen(tmp_path: Path,
                                                       opened: list[SqliteStateStore]) -> None:
    first = await open_store(opened, tmp_path)
    state = capability(first)
    await state.save_state("db", [StateItem("k", b"v", metadata={"ttlInSeconds": "100"}),
                                  StateItem("p", b"permanent")])
    before = await state.get_state("db", "k")
    await first.close()

    second = await open_store(opened, tmp_path)
    state = capability(second)
    after = await state.get_state("db", "k")
    assert after == before
    assert (await state.get_state("db", "p")).value == b"permanent"
    assert after.etag is not None
    await state.save_state("db", [StateItem("k", b"w", etag=after.etag)])
    newer = (await state.get_state("db", "k")).etag
    assert newer is not None
    assert int(newer) > int(after.etag)


async def test_bulk_get_is_one_query_per_chunk(tmp_path: Path,
                                               opened: list[SqliteStateStore]) -> None:
    store = await open_store(opened, tmp_path)
    await store.bulk_set([SetRequest(f"k{i}", b"%d" % i) for i in range(50)])
    statements: list[str] = []
    assert store._db is not None
    await store._db.set_trace_callback(statements.append)
    items = await store.bulk_get([f"k{i}" for i in range(60)], {})
    assert [s for s in statements if s.lstrip().upper().startswith("SELECT")] == statements
    assert len(statements) == 1
    assert [i.value for i in items[:50]] == [b"%d" % i for i in range(50)]
    assert all(i.value == b"" and i.etag is None for i in items[50:])
    statements.clear()
    many = [f"k{i}" for i in range(2 * BULK_CHUNK + 1)]
    items = await store.bulk_get(many, {})
    assert len(statements) == 3
    assert [i.key for i in items] == many
    assert [i.value for i in items[:50]] == [b"%d" % i for i in range(50)]


async def test_expired_rows_are_deleted_by_the_cleanup(tmp_path: Path,
                                                       opened: list[SqliteStateStore]) -> None:
    store = await open_store(opened, tmp_path, cleanupIntervalInSeconds="0.2")
    await store.set(SetRequest("short", b"s", ttl_seconds=1))
    await store.set(SetRequest("long", b"l"))
    assert len(rows(tmp_path / "state-db.db")) == 2
    for _ in range(30):
        await asyncio.sleep(0.1)
        if len(rows(tmp_path / "state-db.db")) < 2:
            break
    assert rows(tmp_path / "state-db.db") == [("long", b"l")]


async def test_two_stores_sharing_a_file(tmp_path: Path, opened: list[SqliteStateStore]) -> None:
    path = str(tmp_path / "shared.db")
    one = await open_store(opened, tmp_path, "a", connectionString=path)
    two = await open_store(opened, tmp_path, "b", connectionString=path)
    await one.set(SetRequest("k", b"from one"))
    got = await two.get("k", Consistency.UNSPECIFIED, {})
    assert got is not None
    assert got.value == b"from one"
    await two.set(SetRequest("k", b"from two", etag=got.etag))
    with pytest.raises(EtagMismatch):
        await one.set(SetRequest("k", b"stale", etag=got.etag))
    await one.set(SetRequest("other", b"x"))
    etags = {(await s.get(k, Consistency.UNSPECIFIED, {})).etag  # type: ignore[union-attr]
             for s in (one, two) for k in ("k", "other")}
    assert len(etags) == 2


async def test_concurrent_writers_on_one_connection(tmp_path: Path,
                                                    opened: list[SqliteStateStore]) -> None:
    store = await open_store(opened, tmp_path)
    await asyncio.gather(*(store.set(SetRequest(f"k{i}", b"v")) for i in range(30)))
    assert len(rows(tmp_path / "state-db.db")) == 30


def test_bad_table_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="tableName"):
        decode(SqliteStateStore.Settings, {"tableName": "x; DROP"}, component="state.db")


async def test_a_file_that_is_not_a_database_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not an sqlite database" * 100)
    settings = decode(SqliteStateStore.Settings, {"connectionString": str(tmp_path / "junk.db")},
                      component="state.db")
    assert isinstance(settings, SqliteStateStore.Settings)
    store = SqliteStateStore("db", settings, ComponentContext("app", tmp_path))
    with pytest.raises(Unavailable, match="cannot open"):
        await store.init()


async def test_closed_store_is_unavailable(tmp_path: Path,
                                           opened: list[SqliteStateStore]) -> None:
    store = await open_store(opened, tmp_path)
    await store.ping()
    await store.close()
    with pytest.raises(Unavailable, match="not open"):
        await store.ping()
    with pytest.raises(Unavailable, match="not open"):
        await store.set(SetRequest("k", b"v"))


async def test_a_writer_waits_for_another_process_then_answers_unavailable(
        tmp_path: Path, opened: list[SqliteStateStore],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another connection holding the write lock (another worker, another sidecar): a write
    waits for it up to the busy timeout, succeeds once it is let go, and past the timeout
    fails as Unavailable with the reason (never a bare "database is locked")."""
    from pylotto.components._backends import sqlite_file

    monkeypatch.setattr(sqlite_file, "BUSY_TIMEOUT_MS", 300)
    store = await open_store(opened, tmp_path)
    other = sqlite3.connect(tmp_path / "state-db.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        writing = asyncio.create_task(store.set(SetRequest("k", b"waited")))
        await asyncio.sleep(0.1)
        other.execute("COMMIT")  # let go within the timeout: the write goes through
        await writing
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable, match=r"stayed locked by another writer for 0\.3 s"):
            await store.set(SetRequest("k", b"too late"))
        other.execute("ROLLBACK")
    finally:
        other.close()
    got = await store.get("k", Consistency.EVENTUAL, {})
    assert got is not None and got.value == b"waited"
