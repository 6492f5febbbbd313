"""The MySQL / MariaDB components on the real server: every verb, the etag, first-write, TTL
and transaction rules, storage layout, atomicity across instances, and queries checked against
the reference evaluator."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from pylotto.components.state import mysql as mysql_state
from pylotto.components.state.base import (
    TTL_EXPIRE_TIME,
    BulkGetItem,
    Concurrency,
    Consistency,
    DeleteRequest,
    SetRequest,
)
from pylotto.components.state.mysql import MySQLStateStore
from pylotto.components.state.query import (
    And,
    Eq,
    Filter,
    In,
    Or,
    Order,
    Query,
    QueryItem,
    QueryResult,
    Range,
    RangeOp,
    Scalar,
    SortKey,
    parse_query,
    sort_and_filter_sequence,
)
from pylotto.core.errors import EtagMismatch, InvalidArgument
from tests.integration.mysql.conftest import Builder, sql

ANY = Consistency.UNSPECIFIED


async def value_of(store: MySQLStateStore, key: str) -> bytes | None:
    got = await store.get(key, ANY, {})
    return None if got is None else got.value


async def etag_of(store: MySQLStateStore, key: str) -> str:
    got = await store.get(key, ANY, {})
    assert got is not None and got.etag is not None
    return got.etag


# ---- state: verbs and rules ---------------------------------------------------------------


async def test_set_get_delete_and_bulk_get(build: Builder) -> None:
    async with build("state", {}) as store:
        assert await store.get("k", ANY, {}) is None
        await store.set(SetRequest("k", b"v1"))
        got = await store.get("k", ANY, {})
        assert got is not None and got.value == b"v1" and got.etag and got.metadata == {}
        await store.set(SetRequest("k", b"v2"))
        assert await value_of(store, "k") == b"v2"
        await store.bulk_set([SetRequest("a", b"A"), SetRequest("b", b"")])
        items = await store.bulk_get(["b", "missing", "a", "b"], {})
        assert [(i.key, i.value) for i in items] == [
            ("b", b""), ("missing", b""), ("a", b"A"), ("b", b"")]
        assert items[1] == BulkGetItem("missing")
        assert items[0].etag == items[3].etag == await etag_of(store, "b")
        assert await store.bulk_get([], {}) == []
        await store.delete(DeleteRequest("k"))
        await store.delete(DeleteRequest("k"))  # absent: still fine without an etag
        assert await store.get("k", ANY, {}) is None
        await store.bulk_delete([DeleteRequest("a"), DeleteRequest("b")])
        assert [i.value for i in await store.bulk_get(["a", "b"], {})] == [b"", b""]


async def test_values_round_trip_byte_for_byte_and_json_is_kept_as_a_document(
    build: Builder, prefix: str
) -> None:
    values = {
        "doc": b'{ "city": "Oslo",\n "n": 1.50, "city": "Bergen" }',
        "bin": b"\x00\x01\xfe\xff",
        "text": b"hello",
        "empty": b"",
        "nan": b'{"x": NaN}',
        "deep": b"[" * 40 + b"]" * 40,
    }
    async with build("state", {}) as store:
        await store.bulk_set([SetRequest(key, value) for key, value in values.items()])
        for key, value in values.items():
            assert await value_of(store, key) == value
    rows = sql(f"SELECT id, JSON_UNQUOTE(JSON_EXTRACT(doc, '$.city')), doc IS NULL, isbinary "
               f"FROM `{prefix}_state` ORDER BY id")
    assert rows == [("bin", None, 1, 1), ("deep", None, 1, 0), ("doc", "Bergen", 0, 0),
                    ("empty", None, 1, 1), ("nan", None, 1, 0), ("text", None, 1, 1)]


async def test_keys_are_exact(build: Builder) -> None:
    keys = ["k", "K", "k ", " k", "é", "e\u0301", "😀", "a\tb", "x" * 255]
    async with build("state", {}) as store:
        await store.bulk_set([SetRequest(key, key.encode()) for key in keys])
        for key in keys:
            assert await value_of(store, key) == key.encode()
        assert [i.value for i in await store.bulk_get(keys, {})] == [k.encode() for k in keys]
        await store.delete(DeleteRequest("k "))
        assert await value_of(store, "k") == b"k"
        with pytest.raises(InvalidArgument, match="at most 255"):
            await store.set(SetRequest("x" * 256, b"v"))


async def test_etags(build: Builder) -> None:
    async with build("state", {}) as store:
        await store.set(SetRequest("k", b"v1"))
        first = await etag_of(store, "k")
        await store.set(SetRequest("k", b"v2", etag=first))
        second = await etag_of(store, "k")
        assert int(second) > int(first)
        with pytest.raises(EtagMismatch):
            await store.set(SetRequest("k", b"v3", etag=first))
        with pytest.raises(EtagMismatch):
            await store.set(SetRequest("absent", b"v", etag=second))
        with pytest.raises(EtagMismatch):
            await store.delete(DeleteRequest("k", etag=first))
        with pytest.raises(EtagMismatch):
            await store.delete(DeleteRequest("absent", etag=first))
        with pytest.raises(EtagMismatch):  # contrib's mysql compares text: no eTag is that
            await store.set(SetRequest("k", b"v", etag="not-a-version"))
        with pytest.raises(EtagMismatch):
            await store.delete(DeleteRequest("k", etag="1.5"))
        assert await value_of(store, "k") == b"v2"
        await store.delete(DeleteRequest("k", etag=second))
        assert await store.get("k", ANY, {}) is None
        # a key written again never gets an etag it had before
        await store.set(SetRequest("k", b"again"))
        assert int(await etag_of(store, "k")) > int(second)


async def test_first_write(build: Builder) -> None:
    async with build("state", {}) as store:
        await store.set(SetRequest("k", b"v1", concurrency=Concurrency.FIRST_WRITE))
        with pytest.raises(EtagMismatch, match="first-write"):
            await store.set(SetRequest("k", b"v2", concurrency=Concurrency.FIRST_WRITE))
        assert await value_of(store, "k") == b"v1"
        etag = await etag_of(store, "k")
        await store.set(SetRequest("k", b"v3", etag=etag, concurrency=Concurrency.FIRST_WRITE))
        assert await value_of(store, "k") == b"v3"
        # an expired key is absent: first-write takes it over
        await store.set(SetRequest("t", b"old", ttl_seconds=1))
        await asyncio.sleep(1.1)
        await store.set(SetRequest("t", b"new", concurrency=Concurrency.FIRST_WRITE))
        got = await store.get("t", ANY, {})
        assert got is not None and got.value == b"new" and got.metadata == {}


async def test_ttl(build: Builder, prefix: str) -> None:
    async with build("state", {"ttlInSeconds": "1"}) as store:
        await store.set(SetRequest("default", b"v"))
        await store.set(SetRequest("own", b"v", ttl_seconds=100))
        await store.set(SetRequest("never", b"v", ttl_seconds=0))
        await store.set(SetRequest("huge", b"v", ttl_seconds=10**15))
        own = await store.get("own", ANY, {})
        assert own is not None and own.metadata[TTL_EXPIRE_TIME].endswith("Z")
        assert (await store.get("never", ANY, {})).metadata == {}
        etag = await etag_of(store, "default")
        await asyncio.sleep(1.1)
        assert await store.get("default", ANY, {}) is None
        assert [i.value for i in await store.bulk_get(["default", "own"], {})] == [b"", b"v"]
        with pytest.raises(EtagMismatch):  # an expired key has no version to match
            await store.set(SetRequest("default", b"w", etag=etag))
        with pytest.raises(EtagMismatch):
            await store.delete(DeleteRequest("default", etag=etag))
        assert await value_of(store, "huge") == b"v"
        # a write without TTL on a key with one makes it permanent
        await store.set(SetRequest("own", b"w", ttl_seconds=-1))
        assert (await store.get("own", ANY, {})).metadata == {}
        assert sql(f"SELECT COUNT(*) FROM `{prefix}_state`") == [(4,)]  # expired, not deleted
        assert await store.delete_expired() == 1
        assert sql(f"SELECT id FROM `{prefix}_state` ORDER BY id") == [
            ("huge",), ("never",), ("own",)]


async def test_cleanup_deletes_in_batches(
    build: Builder, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mysql_state, "CLEANUP_BATCH", 2)
    async with build("state", {"cleanupIntervalInSeconds": "0"}) as store:
        await store.bulk_set([SetRequest(f"k{i}", b"v", ttl_seconds=1) for i in range(5)])
        await store.set(SetRequest("kept", b"v"))
        await asyncio.sleep(1.1)
        assert await store.delete_expired() == 5
        assert sql(f"SELECT id FROM `{prefix}_state`") == [("kept",)]


async def test_periodic_cleanup_deletes_expired_rows(build: Builder, prefix: str) -> None:
    async with build("state", {"cleanupIntervalInSeconds": "0.3"}) as store:
        await store.set(SetRequest("short", b"1", ttl_seconds=1))
        await store.set(SetRequest("long", b"2"))
        await asyncio.sleep(1.8)
        assert sql(f"SELECT id FROM `{prefix}_state`") == [("long",)]


async def test_transactions_are_all_or_nothing(build: Builder) -> None:
    async with build("state", {}) as store:
        await store.bulk_set([SetRequest("a", b"a0"), SetRequest("b", b"b0")])
        etag_a = await etag_of(store, "a")
        await store.multi([SetRequest("a", b"a1", etag=etag_a), DeleteRequest("b"),
                           SetRequest("c", b"c1", ttl_seconds=100)], {})
        assert [i.value for i in await store.bulk_get(["a", "b", "c"], {})] == [b"a1", b"", b"c1"]
        failing: list[list[Any]] = [
            [SetRequest("a", b"a2"), DeleteRequest("c"), SetRequest("d", b"d", etag=etag_a)],
            [SetRequest("a", b"a2"), SetRequest("c", b"c2", concurrency=Concurrency.FIRST_WRITE)],
            [DeleteRequest("a"), DeleteRequest("c", etag="1")],
        ]
        for operations in failing:
            with pytest.raises(EtagMismatch):
                await store.multi(operations, {})
            assert [i.value for i in await store.bulk_get(["a", "c", "d"], {})] == [
                b"a1", b"c1", b""]
        with pytest.raises(EtagMismatch):  # refused before anything is written
            await store.bulk_set([SetRequest("a", b"x"), SetRequest("c", b"y", etag="bad")])
        assert await value_of(store, "a") == b"a1"
        await store.multi([], {})


async def test_one_megabyte_values(build: Builder) -> None:
    blob = random.Random(1).randbytes(1 << 20)
    doc = json.dumps({"data": "x" * ((1 << 20) - 20), "n": 7}).encode()
    assert len(doc) >= 1 << 20
    async with build("state", {}) as store:
        await store.bulk_set([SetRequest("blob", blob), SetRequest("doc", doc)])
        assert await value_of(store, "blob") == blob
        assert await value_of(store, "doc") == doc
        result = await store.query(Query(filter=Eq(("n",), 7)), {})
        assert [item.key for item in result.items] == ["doc"]
        store.client.max_allowed_packet = 1 << 20  # a server with a smaller limit
        with pytest.raises(InvalidArgument, match="max_allowed_packet"):
            await store.set(SetRequest("blob", blob))
        assert await value_of(store, "blob") == blob


async def test_a_document_the_server_refuses_is_stored_without_it(
    build: Builder, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the server refuse a document as JSON, the values are stored all the same (queries
    then read them in Python)."""
    async with build("state", {}) as store:
        monkeypatch.setattr(mysql_state, "json_document", lambda value: ("{not json", True))
        await store.multi([SetRequest("a", b'{"v": 1}'), SetRequest("b", b'{"v": 2}')], {})
        assert await value_of(store, "a") == b'{"v": 1}'
        assert sql(f"SELECT id, doc, isbinary FROM `{prefix}_state` ORDER BY id") == [
            ("a", None, 0), ("b", None, 0)]
        result = await store.query(Query(filter=Eq(("v",), 2)), {})
        assert [item.key for item in result.items] == ["b"]


async def test_concurrent_writers_with_one_etag_one_wins(build: Builder) -> None:
    async with build("state", {}) as one, build("state", {}) as two:
        await one.set(SetRequest("k", b"v0"))
        etag = await etag_of(one, "k")
        results = await asyncio.gather(*(
            (one if i % 2 else two).set(SetRequest("k", f"v{i}".encode(), etag=etag))
            for i in range(20)), return_exceptions=True)
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, EtagMismatch) for r in results if r is not None)
        firsts = await asyncio.gather(*(
            (one if i % 2 else two).set(SetRequest("f", b"x", concurrency=Concurrency.FIRST_WRITE))
            for i in range(20)), return_exceptions=True)
        assert sum(r is None for r in firsts) == 1


async def test_crossing_transactions_all_succeed(build: Builder) -> None:
    """Transactions locking the same rows in opposite orders deadlock in InnoDB; the victim is
    rolled back and run again, so every one of them succeeds."""
    async with build("state", {"maxConns": "20"}) as store:
        keys = [f"k{i}" for i in range(4)]
        await store.bulk_set([SetRequest(key, b"0") for key in keys])
        await asyncio.gather(*(
            store.multi([SetRequest(key, str(n).encode())
                         for key in (keys if n % 2 else keys[::-1])], {})
            for n in range(30)))
        values = {i.value for i in await store.bulk_get(keys, {})}
        assert len(values) == 1  # every key from the same (last committed) transaction


async def test_instances_sharing_a_table_and_creating_it_at_once(build: Builder) -> None:
    stores = [build("state", {}, init=False) for _ in range(4)]
    opened = [await context.__aenter__() for context in stores]
    try:
        await asyncio.gather(*(store.init() for store in opened))
        await opened[0].set(SetRequest("k", b"from 0"))
        assert await value_of(opened[3], "k") == b"from 0"
        await opened[2].set(SetRequest("k", b"from 2", etag=await etag_of(opened[1], "k")))
        assert await value_of(opened[0], "k") == b"from 2"
    finally:
        for context in stores:
            await context.__aexit__(None, None, None)


async def test_etags_from_the_counter_table(build: Builder, prefix: str) -> None:
    """Servers without sequences (MySQL) reserve etags from a one-row counter table."""
    async with build("state", {}, init=False) as store:
        store.etag_source = "counter"
        await store.init()
        await store.set(SetRequest("a", b"1"))
        first = await etag_of(store, "a")
        await store.multi([SetRequest("a", b"2", etag=first), SetRequest("b", b"1"),
                           DeleteRequest("c")], {})
        etags = [i.etag for i in await store.bulk_get(["a", "b"], {})]
        assert sorted(int(e) for e in etags if e) == [int(first) + 1, int(first) + 2]
        with pytest.raises(EtagMismatch):
            await store.set(SetRequest("a", b"3", etag=first))
        assert sql(f"SELECT k, id FROM `{prefix}_state_etag`") == [(0, int(first) + 3)]


async def test_schema_name_creates_the_database(build: Builder, prefix: str) -> None:
    schema = f"{prefix}_db"
    async with build("state", {"schemaName": schema}) as store:
        await store.set(SetRequest("k", b"v"))
        assert await value_of(store, "k") == b"v"
    assert sql(f"SELECT id, value FROM `{schema}`.`{prefix}_state`") == [("k", b"v")]
    assert sql("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'test' "
               "AND TABLE_NAME = %s", (f"{prefix}_state",)) == [(0,)]


# ---- state: queries -----------------------------------------------------------------------

FIELDS = [("a",), ("b",), ("n", "x"), ("é",), ('q"t',), ("s p",), ("missing",)]
SCALARS: list[Scalar] = [
    0, 1, -1, 2, 1.0, 1.5, -0.0, 10, 100, 1e-3, 123456789, "1", "", "a", "a ", "A", "b", "é",
    "e\u0301", "😀", "a\tb", "z\x00", True, False, None,
]


def random_document(rng: random.Random, *, compound: bool) -> Any:
    doc: dict[str, Any] = {}
    for path in FIELDS[:-1]:
        roll = rng.random()
        if roll < 0.15:
            continue  # missing
        value: Any = rng.choice(SCALARS)
        if compound and roll > 0.9:
            value = rng.choice([{"k": 1}, [1, 2], {"K": [True]}, [], {"a": "é"}])
        target = doc
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return doc


def random_filter(rng: random.Random, depth: int = 0) -> Filter:
    roll = rng.random()
    if depth < 2 and roll < 0.2:
        children = tuple(random_filter(rng, depth + 1) for _ in range(rng.randint(2, 3)))
        return And(children) if rng.random() < 0.5 else Or(children)
    path = rng.choice(FIELDS)
    if roll < 0.5:
        return Eq(path, rng.choice(SCALARS))
    if roll < 0.65:
        return In(path, tuple(rng.sample(SCALARS, rng.randint(1, 4))))
    bound = rng.choice([v for v in SCALARS if v is not None and not isinstance(v, bool)])
    assert isinstance(bound, str | int | float)
    return Range(rng.choice(list(RangeOp)), path, bound)


def random_query(rng: random.Random, key_prefix: str) -> Query:
    sort = tuple(SortKey(rng.choice(FIELDS), rng.choice(list(Order)))
                 for _ in range(rng.choice([0, 1, 1, 2])))
    return Query(filter=random_filter(rng) if rng.random() < 0.8 else None, sort=sort,
                 limit=rng.choice([0, 1, 4, 9]), key_prefix=key_prefix)


async def all_pages(store: MySQLStateStore, query: Query) -> list[QueryResult]:
    pages = [await store.query(query, {})]
    while pages[-1].token:
        pages.append(await store.query(
            Query(query.filter, query.sort, query.limit, pages[-1].token, query.key_prefix), {}))
        assert len(pages) <= 1000
    return pages


def reference_pages(items: list[QueryItem], query: Query) -> list[QueryResult]:
    pages = [sort_and_filter_sequence(items, query)]
    while pages[-1].token:
        pages.append(sort_and_filter_sequence(
            items, Query(query.filter, query.sort, query.limit, pages[-1].token,
                         query.key_prefix)))
    return pages


async def load(store: MySQLStateStore, values: dict[str, bytes]) -> list[QueryItem]:
    await store.bulk_set([SetRequest(key, value) for key, value in values.items()])
    items = await store.bulk_get(list(values), {})
    return [QueryItem(i.key, i.value, i.etag) for i in items]


def count_fallbacks(store: MySQLStateStore, monkeypatch: pytest.MonkeyPatch) -> list[Query]:
    """Record every query finished in Python instead of SQL."""
    calls: list[Query] = []
    original = store._candidates

    async def spy(query: Query, narrow: bool) -> list[QueryItem]:
        calls.append(query)
        return await original(query, narrow)

    monkeypatch.setattr(store, "_candidates", spy)
    return calls


async def test_queries_in_sql_equal_the_reference(
    build: Builder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20261124)
    values = {f"app||k{i:03}": json.dumps(random_document(rng, compound=False),
                                          ensure_ascii=rng.random() < 0.5).encode()
              for i in range(80)}
    values.update({"app||bin": b"\xff\x00", "app||text": b"plain", "app||scalar": b"5",
                   "other||k000": values["app||k000"], "app||expired": b'{"a": 1}'})
    async with build("state", {}) as store:
        items = await load(store, values)
        await store.set(SetRequest("app||expired", b'{"a": 1}', ttl_seconds=1))
        items = [i for i in items if i.key != "app||expired"]
        fallbacks = count_fallbacks(store, monkeypatch)
        await asyncio.sleep(1.1)
        for _ in range(250):
            query = random_query(rng, "app||")
            assert await all_pages(store, query) == reference_pages(items, query), query
        assert fallbacks == []  # scalars only, bounds below 2^53: all of it ran as SQL


async def test_queries_the_sql_cannot_order_exactly_are_finished_in_python(
    build: Builder, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    values = {f"k{i:03}": json.dumps(random_document(rng, compound=True)).encode()
              for i in range(60)}
    values.update({
        "big1": b'{"a": 9007199254740993, "b": 1}',
        "big2": b'{"a": 9007199254740992, "b": 1}',
        "big3": b'{"a": 9007199254740992.0, "b": 2}',
        "nan": b'{"a": NaN, "b": 1}',
        "deep": b'{"b": 1, "d": ' + b"[" * 40 + b"]" * 40 + b"}",
    })
    async with build("state", {}) as store:
        items = await load(store, values)
        fallbacks = count_fallbacks(store, monkeypatch)
        special = [
            Query(filter=Eq(("a",), 9007199254740992)),
            Query(filter=Range(RangeOp.GT, ("a",), 9007199254740992)),
            Query(sort=(SortKey(("a",)),)),
            Query(filter=Eq(("b",), 1), sort=(SortKey(("a",), Order.DESC),), limit=2),
            Query(filter=Range(RangeOp.GT, ("a",), 0)),  # NaN compares greater than anything
        ]
        for query in special:
            assert await all_pages(store, query) == reference_pages(items, query), query
        assert {(q.filter, q.sort) for q in fallbacks} == {(q.filter, q.sort) for q in special}
        for _ in range(150):
            query = random_query(rng, "")
            assert await all_pages(store, query) == reference_pages(items, query), query


async def test_query_key_prefix_tokens_and_paths(build: Builder) -> None:
    async with build("state", {}) as store:
        await store.bulk_set([
            SetRequest("a_%!||1", '{"v": 3, "ключ": {"x y": "é"}}'.encode()),
            SetRequest("a_%!||2", b'{"v": 1}'),
            SetRequest("aX%!||3", b'{"v": 2}'),
            SetRequest("a_%!!||4", b'{"v": 0}'),
        ])
        page = await store.query(Query(sort=(SortKey(("v",)),), limit=1, key_prefix="a_%!||"),
                                 {})
        assert [i.key for i in page.items] == ["a_%!||2"] and page.token
        page = await store.query(Query(sort=(SortKey(("v",)),), limit=1, token=page.token,
                                       key_prefix="a_%!||"), {})
        assert [i.key for i in page.items] == ["a_%!||1"] and page.token == ""
        assert page.items[0].etag == await etag_of(store, "a_%!||1")
        parsed = parse_query({"filter": {"EQ": {"ключ.x y": "é"}}})
        assert [i.key for i in (await store.query(parsed, {})).items] == ["a_%!||1"]
        with pytest.raises(InvalidArgument, match="token"):
            await store.query(Query(token="garbage!"), {})


# ---- sequencer ----------------------------------------------------------------------------


async def test_sequencer_ids_segments_and_floors(build: Builder, prefix: str) -> None:
    async with build("sequencer", {}) as sequencer:
        assert [await sequencer.next_id("k", {}) for _ in range(3)] == [1, 2, 3]
        segment = await sequencer.get_segment("k", 10)
        assert (segment.first, segment.last) == (4, 13)
        assert await sequencer.next_id("k", {}) == 14
        assert await sequencer.next_id("K", {}) == 1  # keys are exact
        assert await sequencer.next_id("k ", {}) == 1
        await sequencer.ensure_bigger_than("k", 100)
        await sequencer.ensure_bigger_than("k", 50)  # never moves back
        assert await sequencer.next_id("k", {}) == 101
        await sequencer.ensure_bigger_than("neg", -5)
        assert await sequencer.next_id("neg", {}) == 1
        segment = await sequencer.get_segment("fresh", 5)
        assert (segment.first, segment.last) == (1, 5)
        with pytest.raises(InvalidArgument, match="at most 255"):
            await sequencer.next_id("x" * 256, {})
    async with build("sequencer", {}) as reopened:  # durable
        assert await reopened.next_id("k", {}) == 102
    assert sql(f"SELECT last FROM `{prefix}_sequencer` WHERE id = 'k'") == [(102,)]


async def test_sequencer_ids_are_unique_across_instances(build: Builder) -> None:
    async with build("sequencer", {}) as one, build("sequencer", {}) as two:
        await one.ensure_bigger_than("k", 500)
        await two.ensure_bigger_than("k", 10)
        singles = [(one if i % 2 else two).next_id("k", {}) for i in range(40)]
        segments = [(one if i % 2 else two).get_segment("k", 7) for i in range(10)]
        results = await asyncio.gather(*singles, *segments)
        ids = [r for r in results if isinstance(r, int)]
        ids += [i for r in results if not isinstance(r, int) for i in range(r.first, r.last + 1)]
        assert sorted(ids) == list(range(501, 501 + 40 + 70))
        fresh = await asyncio.gather(*((one if i % 2 else two).next_id("new", {})
                                       for i in range(30)))
        assert sorted(fresh) == list(range(1, 31))


async def test_sequencer_schema_name(build: Builder, prefix: str) -> None:
    async with build("sequencer", {"schemaName": f"{prefix}_seq"}) as sequencer:
        assert await sequencer.next_id("k", {}) == 1
    assert sql(f"SELECT id, last FROM `{prefix}_seq`.`{prefix}_sequencer`") == [("k", 1)]
