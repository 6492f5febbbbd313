"""Behaviour specific to the PostgreSQL components: storage layout, atomicity across
instances, changes made by other writers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import asyncpg

from pylotto.components.configuration.base import ConfigurationItem, ItemsQuery
from pylotto.components.lock.base import LockStatus
from pylotto.components.state.base import Consistency, SetRequest
from tests.integration.postgresql.conftest import DSN, Builder


async def test_json_values_are_queryable_and_every_value_round_trips(
    build: Builder, prefix: str
) -> None:
    values = {
        "doc": b'{ "city": "Oslo",\n "n": 1.50 }',
        "bin": b"\x00\x01\xfe\xff",
        "text": b"hello",
    }
    async with build("state", {}) as store:
        await store.bulk_set([SetRequest(key, value) for key, value in values.items()])
        for key, value in values.items():
            got = await store.get(key, Consistency.UNSPECIFIED, {})
            assert got is not None and got.value == value
        conn = await asyncpg.connect(DSN)
        try:
            rows = await conn.fetch(
                f'SELECT key, value->>\'city\' AS city, isbinary FROM "{prefix}_state" ORDER BY key'
            )
        finally:
            await conn.close()
    assert [(r["key"], r["city"], r["isbinary"]) for r in rows] == [
        ("bin", None, True), ("doc", "Oslo", False), ("text", None, True),
    ]


async def test_cleanup_deletes_expired_rows(build: Builder) -> None:
    async with build("state", {"cleanupIntervalInSeconds": "0"}) as store:
        await store.set(SetRequest("short", b"1", ttl_seconds=1))
        await store.set(SetRequest("long", b"2"))
        await asyncio.sleep(1.1)
        assert await store.delete_expired() == 1
        assert await store.get("long", Consistency.UNSPECIFIED, {}) is not None


async def test_one_of_many_contenders_across_instances_gets_the_lock(build: Builder) -> None:
    async with build("lock", {}) as one, build("lock", {}) as two:
        results = await asyncio.gather(*(
            (one if i % 2 else two).try_lock("res", f"owner{i}", 30) for i in range(20)
        ))
        assert results.count(True) == 1
        winner = f"owner{results.index(True)}"
        assert await two.keep_alive("res", "nobody", 30) is LockStatus.LOCK_BELONG_TO_OTHERS
        assert await one.unlock("res", winner) is LockStatus.SUCCESS
        assert await two.unlock("res", winner) is LockStatus.LOCK_UNEXIST


async def test_concurrent_segments_are_disjoint(build: Builder) -> None:
    async with build("sequencer", {}) as one, build("sequencer", {}) as two:
        await one.ensure_bigger_than("k", 500)
        await two.ensure_bigger_than("k", 10)  # a lower floor never moves the counter back
        segments = await asyncio.gather(*(
            (one if i % 2 else two).get_segment("k", 7) for i in range(10)
        ))
        ids = sorted(i for s in segments for i in range(s.first, s.last + 1))
        assert ids == list(range(501, 571))


async def test_changes_by_plain_sql_reach_subscribers_in_order(
    build: Builder, prefix: str
) -> None:
    async with build("configuration", {}) as store:
        changes: asyncio.Queue[list[ConfigurationItem]] = asyncio.Queue()

        def handler(items: Sequence[ConfigurationItem]) -> None:
            changes.put_nowait(list(items))

        subscription = await store.subscribe(ItemsQuery("app", "g", "l"), handler)
        conn = await asyncpg.connect(DSN)
        table = f'"{prefix}_configuration"'
        try:
            for n in range(5):
                await conn.execute(
                    f"INSERT INTO {table} (app_id, \"group\", label, key, content, tags) "
                    "VALUES ('app', 'g', 'l', 'k', $1, $2::jsonb) ON CONFLICT "
                    "(app_id, \"group\", label, key) DO UPDATE SET content = excluded.content",
                    str(n), json.dumps({"n": str(n)}),
                )
            await conn.execute(f"INSERT INTO {table} (app_id, \"group\", label, key, content) "
                               "VALUES ('other', 'g', 'l', 'k', 'x'), ('app', 'g', 'l', 'big', $1)",
                               "y" * 20000)
            await conn.execute(f"DELETE FROM {table} WHERE key = 'k'")
        finally:
            await conn.close()
        seen: list[ConfigurationItem] = []
        while len(seen) < 7:
            seen.extend(await asyncio.wait_for(changes.get(), 5))
        assert [(i.key, i.content[:3], len(i.content)) for i in seen] == [
            ("k", "0", 1), ("k", "1", 1), ("k", "2", 1), ("k", "3", 1), ("k", "4", 1),
            ("big", "yyy", 20000), ("k", "", 0),
        ]
        assert seen[0].tags == {"n": "0"}
        await subscription.close()
