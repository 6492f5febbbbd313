"""Every Redis component on a real 3-master Cluster and on a real Sentinel set: state (single
keys, bulk reads and transactions across hash slots), lock, sequencer, pub/sub, configuration
and name resolution."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.crc import key_slot

from pylotto.components.bindings.base import BindingRequest
from pylotto.components.configuration.base import (
    DEFAULT_GROUP,
    DEFAULT_LABEL,
    ConfigurationItem,
    ItemsQuery,
)
from pylotto.components.lock.base import LockStatus
from pylotto.components.state.base import Consistency, DeleteRequest, SetRequest
from pylotto.core.errors import EtagMismatch
from pylotto.resolution.redis import RedisResolver
from tests.integration.redis_ha.conftest import Build, eventually
from tests.support.inbox import Inbox

KeyMaker = Callable[[str], str]


def spread(key: KeyMaker, count: int) -> list[str]:
    return [key(f"k{i}") for i in range(count)]


async def test_state_items_etags_and_bulk_reads(build: Build, topology: dict[str, str],
                                               key: KeyMaker) -> None:
    keys = spread(key, 12)
    assert len({key_slot(k.encode()) for k in keys}) > 1  # several slots (cluster: masters)
    async with build("state", topology) as store:
        await store.bulk_set([SetRequest(k, f"v{i}".encode()) for i, k in enumerate(keys)])
        items = await store.bulk_get([*keys, key("absent")], {})
        assert [item.value for item in items] == [f"v{i}".encode() for i in range(12)] + [b""]
        first = await store.get(keys[0], Consistency.UNSPECIFIED, {})
        assert first is not None and first.etag == "1"
        with pytest.raises(EtagMismatch):
            await store.set(SetRequest(keys[0], b"x", etag="7"))
        await store.set(SetRequest(keys[0], b"x", etag="1"))
        assert sorted(await store.keys_with_prefix(key(""), 100)) == sorted(keys)
        await store.bulk_delete([DeleteRequest(k) for k in keys])
        assert [item.value for item in await store.bulk_get(keys, {})] == [b""] * 12


async def test_a_transaction_in_one_slot_is_all_or_nothing(
        build: Build, topology: dict[str, str], key: KeyMaker) -> None:
    tagged = [key("{order-7}a"), key("{order-7}b"), key("{order-7}c")]
    async with build("state", topology) as store:
        await store.set(SetRequest(tagged[0], b"a0"))
        with pytest.raises(EtagMismatch):
            await store.multi([SetRequest(tagged[1], b"b1"), SetRequest(tagged[2], b"c1"),
                               DeleteRequest(tagged[0], etag="5")], {})
        assert [i.value for i in await store.bulk_get(tagged, {})] == [b"a0", b"", b""]
        await store.multi([SetRequest(tagged[1], b"b1"), DeleteRequest(tagged[0])], {})
        assert [i.value for i in await store.bulk_get(tagged, {})] == [b"", b"b1", b""]
        await store.bulk_delete([DeleteRequest(k) for k in tagged])


async def test_a_transaction_across_slots_checks_every_part_before_writing(
        build: Build, topology: dict[str, str], key: KeyMaker) -> None:
    keys = spread(key, 6)
    async with build("state", topology) as store:
        await store.set(SetRequest(keys[5], b"old"))
        with pytest.raises(EtagMismatch):  # the last part is refused: nothing is written
            await store.multi([*(SetRequest(k, b"new") for k in keys[:5]),
                               SetRequest(keys[5], b"new", etag="9")], {})
        assert [i.value for i in await store.bulk_get(keys, {})] == [b""] * 5 + [b"old"]
        await store.multi([*(SetRequest(k, b"new") for k in keys[:5]),
                           SetRequest(keys[5], b"new", etag="1")], {})
        assert [i.value for i in await store.bulk_get(keys, {})] == [b"new"] * 6
        await store.bulk_delete([DeleteRequest(k) for k in keys])


async def test_lock_and_sequencer(build: Build, topology: dict[str, str], key: KeyMaker) -> None:
    async with build("lock", topology) as locks, build("sequencer", topology) as ids:
        resources = spread(key, 4)
        assert all([await locks.try_lock(r, "me", 10) for r in resources])
        assert not await locks.try_lock(resources[0], "you", 10)
        assert await locks.keep_alive(resources[1], "me", 10) is LockStatus.SUCCESS
        assert await locks.unlock(resources[2], "you") is LockStatus.LOCK_BELONG_TO_OTHERS
        assert [await locks.unlock(r, "me") for r in resources] == [LockStatus.SUCCESS] * 4
        assert await locks.unlock(resources[0], "me") is LockStatus.LOCK_UNEXIST
        counters = spread(key, 3)
        assert [await ids.next_id(c, {}) for c in counters * 2] == [1, 1, 1, 2, 2, 2]
        segment = await ids.get_segment(counters[0], 10)
        assert (segment.first, segment.last) == (3, 12)
        await ids.ensure_bigger_than(counters[1], 100)
        assert await ids.next_id(counters[1], {}) == 101


async def test_pubsub_streams(build: Build, topology: dict[str, str], key: KeyMaker) -> None:
    async with build("pubsub", {**topology, "consumerID": "g1"}) as broker:
        topics = spread(key, 3)
        inboxes = [Inbox() for _ in topics]
        subscriptions = [await broker.subscribe(t, inbox, {})
                         for t, inbox in zip(topics, inboxes, strict=True)]
        for topic in topics:
            await broker.publish(topic, f"to {topic}".encode(), {"k": "v"})
        await eventually(lambda: all(inbox.messages for inbox in inboxes), 10, "deliveries")
        for topic, inbox in zip(topics, inboxes, strict=True):
            assert [(m.topic, m.data) for m in inbox.messages] == [
                (topic, f"to {topic}".encode())]
        for subscription in subscriptions:
            await subscription.close()


async def test_configuration_items(build: Build, topology: dict[str, str],
                                   key: KeyMaker) -> None:
    names = spread(key, 4)
    items = [ConfigurationItem(n, f"c{i}", DEFAULT_GROUP, DEFAULT_LABEL, version="1")
             for i, n in enumerate(names)]
    query = ItemsQuery("app", DEFAULT_GROUP, DEFAULT_LABEL, tuple(names))
    async with build("configuration", topology) as store:
        await store.set("app", items, {})
        assert [(i.key, i.content, i.version) for i in await store.get(query)] == [
            (n, f"c{i}", "1") for i, n in enumerate(names)]
        seen: asyncio.Queue[list[ConfigurationItem]] = asyncio.Queue()
        subscription = await store.subscribe(query, seen.put_nowait)
        everything = await store.subscribe(ItemsQuery("app", DEFAULT_GROUP, DEFAULT_LABEL),
                                           seen.put_nowait)
        for i, name in enumerate(names):  # keys on every master of the cluster
            await store.set("app", [ConfigurationItem(name, f"changed {i}", DEFAULT_GROUP,
                                                      DEFAULT_LABEL)], {})
        changes: list[tuple[str, str]] = []
        while len(changes) < 2 * len(names):
            changes += [(i.key, i.content) for i in await asyncio.wait_for(seen.get(), 5)]
        assert sorted(changes) == sorted([(n, f"changed {i}") for i, n in enumerate(names)] * 2)
        await subscription.close()
        await everything.close()
        await store.delete(query)
        assert await store.get(query) == []


async def test_name_resolution(topology: dict[str, str], key: KeyMaker) -> None:
    app = key("orders")
    one, two = RedisResolver({**topology, "ttl": "5s"}), RedisResolver({**topology, "ttl": "5s"})
    await one.start(app, "10.0.0.1:50001")
    await two.start(app, "10.0.0.2:50001")
    try:
        assert await one.resolve(app) == ["10.0.0.1:50001", "10.0.0.2:50001"]
    finally:
        await two.stop()
    assert await one.resolve(app) == ["10.0.0.1:50001"]
    await one.stop()


async def test_output_binding(build: Build, topology: dict[str, str], key: KeyMaker) -> None:
    async with build("bindings", topology) as binding:
        for name in spread(key, 3):
            await binding.invoke(BindingRequest("create", b"v", {"key": name}))
            await binding.invoke(BindingRequest("increment", b"", {"key": name + "n"}))
            got = await binding.invoke(BindingRequest("get", b"", {"key": name,
                                                                   "delete": "true"}))
            assert got.data == b"v"
            assert (await binding.invoke(BindingRequest("get", b"", {"key": name}))).data == b""
            await binding.invoke(BindingRequest("delete", b"", {"key": name + "n"}))
