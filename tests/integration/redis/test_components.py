"""Behaviour specific to the Redis state, lock and sequencer stores: storage layout, the rules
their Lua scripts enforce and atomicity across instances (two sidecars sharing one server). The
configuration store: test_configuration.py; their settings: tests/unit/redis/test_settings.py."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from pylotto.components.lock.base import LockStatus
from pylotto.components.sequencer.base import Segment
from pylotto.components.state.base import (
    TTL_EXPIRE_TIME,
    Concurrency,
    Consistency,
    DeleteRequest,
    GetResult,
    SetRequest,
)
from pylotto.core.errors import EtagInvalid, EtagMismatch, Internal
from tests.integration.redis.conftest import Builder, KeyMaker

FIRST_WRITE = Concurrency.FIRST_WRITE
LAST_WRITE = Concurrency.LAST_WRITE
"""Seconds a change may take to reach a subscriber."""


async def read(store: Any, key: str) -> GetResult:
    got = await store.get(key, Consistency.UNSPECIFIED, {})
    assert got is not None, f"{key} is absent"
    assert isinstance(got, GetResult)
    return got


async def etag_of(store: Any, key: str) -> str:
    etag = (await read(store, key)).etag
    assert etag is not None
    return etag


def expiry(got: GetResult) -> float:
    return datetime.fromisoformat(got.metadata[TTL_EXPIRE_TIME].replace("Z", "+00:00")).timestamp()


# ---- shared client ------------------------------------------------------------------------


async def test_a_script_the_server_does_not_have_is_loaded_and_run(
    build: Builder, prefix: str, raw: Redis
) -> None:
    source = f"-- {prefix}\nreturn ARGV[1] .. KEYS[1]"
    sha = hashlib.sha1(source.encode()).hexdigest()
    async with build("lock") as locks:
        script = locks.client.script(source)
        assert await raw.script_exists(sha) == [False]
        assert await script(keys=["!"], args=["hi"]) == b"hi!"  # EVALSHA, NOSCRIPT, load, again
        assert await raw.script_exists(sha) == [True]
        assert await script(keys=["?"], args=["again"]) == b"again?"


async def test_redis_errors_other_than_connection_ones_are_internal(
    build: Builder, key: KeyMaker, raw: Redis
) -> None:
    await raw.set(key("string"), "not a hash")
    async with build("state") as store:
        with pytest.raises(Internal, match=r"state store rd: redis: .*WRONGTYPE"):
            await store.get(key("string"), Consistency.UNSPECIFIED, {})
        with pytest.raises(Internal):
            await store.set(SetRequest(key("string"), b"v", etag="1"))
    assert await raw.get(key("string")) == b"not a hash"


async def test_redis_db_selects_the_database(build: Builder, key: KeyMaker, raw: Redis) -> None:
    async with build("lock", {"redisDB": "1"}) as locks:
        assert await locks.try_lock(key("r"), "me", 30)
    assert await raw.exists(key("r")) == 0
    db1 = Redis(host="127.0.0.1", port=6379, db=1)
    try:
        assert await db1.get(key("r")) == b"me"
    finally:
        await db1.aclose()


# ---- state --------------------------------------------------------------------------------


async def test_an_item_is_a_hash_of_data_and_version(
    build: Builder, key: KeyMaker, raw: Redis
) -> None:
    value = b'\x00\xff{"not": "decoded"}\n'
    async with build("state") as store:
        await store.set(SetRequest(key("k"), value))
        got = await read(store, key("k"))
    assert got.value == value and got.metadata == {}
    assert got.etag is not None and got.etag.isdigit()
    assert await raw.hgetall(key("k")) == {b"data": value, b"version": got.etag.encode()}
    assert await raw.pttl(key("k")) == -1


async def test_etag_and_first_write_rules(build: Builder, key: KeyMaker, raw: Redis) -> None:
    """components-contrib state/redis/redis.go (v1.5.2 lines 27-28, 363-373; v1.18.4 39-60,
    535-545): per-key versions from 1; a missing key takes any etag; "0" and last-write are no
    etag; a delete compares its etag as text; first-write marks the key."""
    k = key("k")
    async with build("state") as store:
        await store.set(SetRequest(k, b"1"))
        assert await etag_of(store, k) == "1"
        await store.set(SetRequest(k, b"2", etag="1"))
        assert await etag_of(store, k) == "2"
        with pytest.raises(EtagMismatch, match="not the current version"):
            await store.set(SetRequest(k, b"3", etag="1"))
        with pytest.raises(EtagInvalid, match="invalid etag 'v1'"):
            await store.set(SetRequest(k, b"3", etag="v1"))
        await store.set(SetRequest(k, b"3", etag="v1", concurrency=LAST_WRITE))  # not parsed
        await store.set(SetRequest(k, b"4", etag="0"))
        assert (await read(store, k)).value == b"4" and await etag_of(store, k) == "4"
        await store.set(SetRequest(key("absent"), b"x", etag="17"))
        assert await etag_of(store, key("absent")) == "1"
        with pytest.raises(EtagMismatch, match="first-write"):  # departure: never overwrite
            await store.set(SetRequest(k, b"5", concurrency=FIRST_WRITE))
        with pytest.raises(EtagMismatch):
            await store.delete(DeleteRequest(k, etag="2"))
        with pytest.raises(EtagMismatch):  # a delete's etag is text, never invalid
            await store.delete(DeleteRequest(k, etag="-1"))
        await store.delete(DeleteRequest(k, etag="4"))
        assert await store.get(k, Consistency.UNSPECIFIED, {}) is None
        await store.delete(DeleteRequest(k))  # absent: fine, with or without etag
        await store.delete(DeleteRequest(k, etag="4"))

        fw = key("fw")
        await store.set(SetRequest(fw, b"a", concurrency=FIRST_WRITE))
        assert await raw.hgetall(fw) == {b"data": b"a", b"first-write": b"0", b"version": b"1"}
        with pytest.raises(EtagMismatch, match="saved with first-write"):
            await store.set(SetRequest(fw, b"b", etag="0"))
        await store.set(SetRequest(fw, b"b", etag="1"))
        await store.delete(DeleteRequest(fw, etag="0"))  # "0" deletes whatever the version
        assert await raw.exists(fw) == 0


async def test_hashes_from_the_global_counter_keep_working(
    build: Builder, key: KeyMaker, raw: Redis
) -> None:
    """Before per-key versions, a hash's version came from one counter: it is read as is, and
    the next write continues from it."""
    k = key("k")
    await raw.hset(k, mapping={"data": b"old", "version": "26932"})
    async with build("state") as store:
        got = await read(store, k)
        assert (got.value, got.etag) == (b"old", "26932")
        with pytest.raises(EtagMismatch):
            await store.set(SetRequest(k, b"x", etag="1"))
        await store.set(SetRequest(k, b"new", etag="26932"))
        assert await etag_of(store, k) == "26933"


async def test_versions_restart_after_a_delete_as_the_reference(
    build: Builder, key: KeyMaker
) -> None:
    k = key("k")
    async with build("state") as one, build("state", name="two") as two:
        for n in range(4):
            store = one if n % 2 else two
            await store.set(SetRequest(k, f"v{n}".encode()))
            assert await etag_of(store, k) == "1"
            await store.set(SetRequest(k, f"w{n}".encode()))
            assert await etag_of(one, k) == "2"
            await store.delete(DeleteRequest(k))


async def test_one_of_many_writers_with_the_same_etag_wins_across_instances(
    build: Builder, key: KeyMaker
) -> None:
    k = key("k")
    async with build("state") as one, build("state", name="two") as two:
        await one.set(SetRequest(k, b"start"))
        etag = await etag_of(one, k)
        results = await asyncio.gather(*(
            (one if i % 2 else two).set(SetRequest(k, f"w{i}".encode(), etag=etag))
            for i in range(30)
        ), return_exceptions=True)
        winners = [i for i, result in enumerate(results) if result is None]
        assert len(winners) == 1
        assert all(isinstance(r, EtagMismatch) for r in results if r is not None)
        assert (await read(two, k)).value == f"w{winners[0]}".encode()


async def test_a_transaction_writes_everything_or_nothing(
    build: Builder, key: KeyMaker, raw: Redis
) -> None:
    a, b, c, new = key("a"), key("b"), key("c"), key("new")
    async with build("state") as store:
        await store.set(SetRequest(a, b"a0"))
        await store.set(SetRequest(b, b"b0"))
        await store.set(SetRequest(c, b"c0", ttl_seconds=100))
        etag_a = await etag_of(store, a)
        with pytest.raises(EtagMismatch, match=f"key '{b}'"):
            await store.multi([
                SetRequest(a, b"a1", etag=etag_a), DeleteRequest(c),
                SetRequest(new, b"n", ttl_seconds=5), DeleteRequest(b, etag="999999999999"),
            ], {})
        assert (await read(store, a)).value == b"a0" and await etag_of(store, a) == etag_a
        assert (await read(store, c)).value == b"c0" and await raw.pttl(c) > 0
        assert await store.get(new, Consistency.UNSPECIFIED, {}) is None
        with pytest.raises(EtagInvalid):  # refused before anything is sent
            await store.multi([SetRequest(new, b"n"), SetRequest(a, b"x", etag="x1")], {})
        assert await raw.exists(new) == 0

        await store.multi([SetRequest(a, b"a1", etag=etag_a), DeleteRequest(b),
                           SetRequest(new, b"n", ttl_seconds=60)], {})
        assert (await read(store, a)).value == b"a1"
        assert await store.get(b, Consistency.UNSPECIFIED, {}) is None
        assert 0 < await raw.pttl(new) <= 60_000


async def test_operations_of_a_batch_see_the_earlier_ones(build: Builder, key: KeyMaker) -> None:
    k, n = key("k"), key("n")
    async with build("state") as store:
        await store.set(SetRequest(k, b"old"))
        await store.multi([DeleteRequest(k), SetRequest(k, b"again", concurrency=FIRST_WRITE)], {})
        assert (await read(store, k)).value == b"again"
        with pytest.raises(EtagMismatch, match="first-write"):
            await store.bulk_set([SetRequest(n, b"1", concurrency=FIRST_WRITE),
                                  SetRequest(n, b"2", concurrency=FIRST_WRITE)])
        assert await store.get(n, Consistency.UNSPECIFIED, {}) is None


async def test_every_write_and_bulk_read_is_one_round_trip(
    build: Builder, key: KeyMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with build("state") as store:
        calls = 0
        original = store.client._run

        async def counting(*args: Any) -> Any:
            nonlocal calls
            calls += 1
            return await original(*args)

        monkeypatch.setattr(store.client, "_run", counting)
        await store.bulk_set([SetRequest(key(f"k{i}"), f"v{i}".encode()) for i in range(5)])
        assert calls == 1
        keys = [key("k3"), key("absent"), key("k0"), key("k3")]
        items = await store.bulk_get(keys, {})
        assert calls == 2
        assert [(item.key, item.value) for item in items] == [
            (key("k3"), b"v3"), (key("absent"), b""), (key("k0"), b"v0"), (key("k3"), b"v3"),
        ]
        assert items[1].etag is None and items[0].etag is not None
        assert items[0].etag == items[3].etag
        await store.bulk_delete([DeleteRequest(key(f"k{i}")) for i in range(5)])
        assert calls == 3
        assert [item.value for item in await store.bulk_get(keys, {})] == [b""] * 4


async def test_ttl_is_the_hash_expiry_and_reads_report_it(
    build: Builder, key: KeyMaker, raw: Redis
) -> None:
    default, own, never = key("default"), key("own"), key("never")
    async with build("state", {"ttlInSeconds": "100"}) as store:
        before = time.time()
        await store.bulk_set([SetRequest(default, b"d"), SetRequest(own, b"o", ttl_seconds=5),
                              SetRequest(never, b"n", ttl_seconds=0)])
        assert 95_000 < await raw.pttl(default) <= 100_000
        assert 3_000 < await raw.pttl(own) <= 5_000
        assert await raw.pttl(never) == -1
        got = await read(store, own)
        assert before + 3 <= expiry(got) <= time.time() + 6
        assert got.metadata[TTL_EXPIRE_TIME].endswith("Z")
        assert (await read(store, never)).metadata == {}
        items = await store.bulk_get([default, never], {})
        assert before + 95 <= expiry(GetResult(b"", None, items[0].metadata)) <= before + 101
        assert items[1].metadata == {}

        await store.set(SetRequest(own, b"kept", ttl_seconds=-1))  # <= 0: never expires
        assert await raw.pttl(own) == -1
        assert (await read(store, own)).metadata == {}
        await store.set(SetRequest(own, b"again"))  # no TTL given: the store's default
        assert await raw.pttl(own) > 95_000


async def test_an_expired_item_is_gone(build: Builder, key: KeyMaker) -> None:
    k = key("k")
    async with build("state") as store:
        await store.set(SetRequest(k, b"v", ttl_seconds=1))
        await asyncio.sleep(1.2)
        assert await store.get(k, Consistency.UNSPECIFIED, {}) is None
        await store.set(SetRequest(k, b"x", concurrency=FIRST_WRITE))
        assert (await read(store, k)).value == b"x"


# ---- lock ---------------------------------------------------------------------------------


async def test_a_lease_is_a_key_holding_the_owner(
    build: Builder, key: KeyMaker, raw: Redis
) -> None:
    r = key("r")
    async with build("lock") as locks:
        assert await locks.try_lock(r, "me", 30)
        assert await raw.get(r) == b"me"
        assert 29_000 < await raw.pttl(r) <= 30_000
        assert not await locks.try_lock(r, "me", 30)  # not re-entrant
        assert not await locks.try_lock(r, "other", 30)
        assert await locks.keep_alive(r, "other", 60) is LockStatus.LOCK_BELONG_TO_OTHERS
        assert await raw.pttl(r) <= 30_000
        await raw.pexpire(r, 5_000)
        assert await locks.keep_alive(r, "me", 60) is LockStatus.SUCCESS
        assert 59_000 < await raw.pttl(r) <= 60_000
        assert await locks.unlock(r, "other") is LockStatus.LOCK_BELONG_TO_OTHERS
        assert await raw.get(r) == b"me"
        assert await locks.unlock(r, "me") is LockStatus.SUCCESS
        assert await raw.exists(r) == 0
        assert await locks.unlock(r, "me") is LockStatus.LOCK_UNEXIST
        assert await locks.keep_alive(r, "me", 30) is LockStatus.LOCK_UNEXIST
        assert await raw.exists(r) == 0  # keep-alive never creates a lease


async def test_an_expired_lease_is_free_and_not_revived(build: Builder, key: KeyMaker) -> None:
    r = key("r")
    async with build("lock") as locks:
        assert await locks.try_lock(r, "me", 1)
        await asyncio.sleep(1.2)
        assert await locks.keep_alive(r, "me", 30) is LockStatus.LOCK_UNEXIST
        assert await locks.unlock(r, "me") is LockStatus.LOCK_UNEXIST
        assert await locks.try_lock(r, "other", 30)
        assert await locks.unlock(r, "me") is LockStatus.LOCK_BELONG_TO_OTHERS


async def test_fifty_contenders_in_two_sidecars_one_owner(build: Builder, key: KeyMaker) -> None:
    r = key("r")
    async with build("lock") as one, build("lock", name="two") as two:
        results = await asyncio.gather(*(
            (one if i % 2 else two).try_lock(r, f"owner{i}", 30) for i in range(50)
        ))
        assert results.count(True) == 1
        winner = f"owner{results.index(True)}"
        losers = [f"owner{i}" for i in range(50) if f"owner{i}" != winner]
        statuses = await asyncio.gather(*(
            (one if n % 2 else two).unlock(r, owner) for n, owner in enumerate(losers)
        ))
        assert set(statuses) == {LockStatus.LOCK_BELONG_TO_OTHERS}
        assert await two.keep_alive(r, winner, 30) is LockStatus.SUCCESS
        assert await one.unlock(r, winner) is LockStatus.SUCCESS
        assert await two.try_lock(r, "late", 30)


# ---- sequencer ----------------------------------------------------------------------------


async def test_a_counter_per_key(build: Builder, key: KeyMaker, raw: Redis) -> None:
    k = key("k")
    async with build("sequencer") as sequencer:
        assert [await sequencer.next_id(k, {}) for _ in range(3)] == [1, 2, 3]
        assert await raw.get(k) == b"3"
        assert await sequencer.get_segment(k, 10) == Segment(4, 13)
        assert await sequencer.next_id(k, {}) == 14
        assert await sequencer.next_id(key("other"), {}) == 1


async def test_bigger_than_only_moves_a_counter_forward(build: Builder, key: KeyMaker) -> None:
    k = key("k")
    async with build("sequencer") as sequencer:
        await sequencer.ensure_bigger_than(k, 100)
        assert await sequencer.next_id(k, {}) == 101
        await sequencer.ensure_bigger_than(k, 50)
        assert await sequencer.next_id(k, {}) == 102
        await sequencer.ensure_bigger_than(k, 102)
        assert await sequencer.next_id(k, {}) == 103
        await sequencer.ensure_bigger_than(key("negative"), -5)
        await sequencer.ensure_bigger_than(key("zero"), 0)
        assert await sequencer.next_id(key("negative"), {}) == 1
        assert await sequencer.next_id(key("zero"), {}) == 1


async def test_floors_beyond_double_precision_are_compared_exactly(
    build: Builder, key: KeyMaker, raw: Redis
) -> None:
    k = key("k")
    await raw.set(k, str(2**53))  # as a double, 2**53 + 1 == 2**53
    async with build("sequencer") as sequencer:
        await sequencer.ensure_bigger_than(k, 2**53 + 1)
        assert await sequencer.next_id(k, {}) == 2**53 + 2
        await sequencer.ensure_bigger_than(k, 2**53 + 1)
        assert await sequencer.next_id(k, {}) == 2**53 + 3
        await sequencer.ensure_bigger_than(k, 2**62 + 1)
        assert await sequencer.get_segment(k, 3) == Segment(2**62 + 2, 2**62 + 4)


async def test_two_sidecars_never_hand_out_the_same_id(build: Builder, key: KeyMaker) -> None:
    k = key("k")
    async with build("sequencer") as one, build("sequencer", name="two") as two:
        await two.ensure_bigger_than(k, 10)
        calls = []
        for i in range(120):
            sequencer = one if i % 2 else two
            calls.append(sequencer.get_segment(k, 7) if i % 3 == 0 else sequencer.next_id(k, {}))
        ids: list[int] = []
        for result in await asyncio.gather(*calls):
            ids += list(range(result.first, result.last + 1)) if isinstance(result, Segment) \
                else [result]
        assert sorted(ids) == list(range(11, 11 + len(ids)))
