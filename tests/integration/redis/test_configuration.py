"""The Redis configuration store in Dapr's layout: plain keys holding ``value||version``,
written by anyone (here as ``redis-cli SET`` would), read by key or by scan, and watched with
keyspace notifications (turned on by adding flags, never by dropping the server's)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from pylotto.components.configuration.base import ConfigurationItem, ItemsQuery
from pylotto.components.configuration.redis import missing_flags, parse
from pylotto.core.errors import InvalidArgument, Unsupported
from tests.integration.redis.conftest import WAIT, Builder, Recorder


def query(*keys: str) -> ItemsQuery:
    return ItemsQuery("app", "default", "default", keys)


def test_values_and_versions_parse_as_dapr_splits_them() -> None:
    assert parse("p:k", "100||7", "p:") == ConfigurationItem("k", "100", "default", "default",
                                                             version="7")
    assert parse("k", "plain", "") == ConfigurationItem("k", "plain", "default", "default")
    assert parse("k", "a||b||c", "") == ConfigurationItem("k", "a", "default", "default",
                                                          version="b")
    assert parse("k", "||1", "") is None  # an empty value is no item


def test_notification_flags_are_added_not_replaced() -> None:
    assert missing_flags("") == "Kg$xe"
    assert missing_flags("Ex") == "ExKg$e"
    assert missing_flags("KEA") == ""
    assert missing_flags("Kg$xe") == ""


async def test_keys_written_by_others_are_read_with_their_versions(
    build: Builder, prefix: str, raw: Redis
) -> None:
    await raw.set(f"{prefix}:orderId1", "100||1")
    await raw.set(f"{prefix}:orderId2", "200")
    await raw.hset(f"{prefix}:a-hash", "f", "v")  # another type: skipped
    await raw.set(f"{prefix}:empty", "||3")  # an empty value: skipped
    async with build("configuration", {"keyPrefix": f"{prefix}:"}) as store:
        got = await store.get(query("orderId2", "orderId1", "absent", "a-hash"))
        assert [(i.key, i.content, i.version) for i in got] == [
            ("orderId2", "200", ""), ("orderId1", "100", "1")]
        everything = await store.get(query())
        assert [i.key for i in everything] == ["orderId1", "orderId2"]


async def test_saves_write_value_and_version_and_refuse_what_would_not_read_back(
    build: Builder, prefix: str, raw: Redis
) -> None:
    async with build("configuration", {"keyPrefix": f"{prefix}:"}) as store:
        await store.set("app", [ConfigurationItem("a", "1", "default", "default", version="v9"),
                                ConfigurationItem("b", "2", "default", "default")], {})
        assert await raw.get(f"{prefix}:a") == b"1||v9"
        assert await raw.get(f"{prefix}:b") == b"2"
        with pytest.raises(InvalidArgument, match="may not contain"):
            await store.set("app", [ConfigurationItem("c", "x||y", "default", "default")], {})
        with pytest.raises(Unsupported, match="doesn't support tags"):
            await store.set("app", [ConfigurationItem("c", "x", "default", "default",
                                                      tags={"t": "1"})], {})
        with pytest.raises(Unsupported, match="doesn't support groups"):
            await store.get(ItemsQuery("app", "g1", "default", ("a",)))
        await store.delete(query("a", "absent"))
        assert await raw.exists(f"{prefix}:a") == 0


async def test_changes_made_with_plain_commands_reach_subscribers(
    build: Builder, prefix: str, raw: Redis
) -> None:
    async with build("configuration", {"keyPrefix": f"{prefix}:"}) as store:
        everything, one = Recorder(), Recorder()
        first = await store.subscribe(query(), everything)
        second = await store.subscribe(query("watched"), one)
        flags = (await raw.config_get("notify-keyspace-events"))["notify-keyspace-events"]
        assert missing_flags(flags) == "", "the store turned the notifications on"
        await raw.set(f"{prefix}:other", "1||1")
        assert await everything.next() == [("other", "1")]
        await raw.set(f"{prefix}:watched", "2||1")
        assert await one.next() == [("watched", "2")]
        assert await everything.next() == [("watched", "2")]
        await raw.delete(f"{prefix}:watched")
        assert await one.next() == [("watched", "")]
        await raw.set(f"{prefix}:watched", "3", px=200)  # events set and expire, then expired
        assert await one.next() == [("watched", "3")]
        seen = [await asyncio.wait_for(one.next(), WAIT)]
        while seen[-1] != [("watched", "")]:
            seen.append(await asyncio.wait_for(one.next(), WAIT))
        assert set(map(tuple, seen[:-1])) <= {(("watched", "3"),)}
        await first.close()
        while not everything.calls.empty():  # what it heard of "watched" before closing
            everything.calls.get_nowait()
        await raw.set(f"{prefix}:other", "4")
        assert await everything.quiet()
        await second.close()


async def test_one_report_per_change_when_pattern_and_key_subscriptions_overlap(
    build: Builder, prefix: str, raw: Redis
) -> None:
    async with build("configuration", {"keyPrefix": f"{prefix}:"}) as store:
        calls = Recorder()
        keys = await store.subscribe(query("k"), calls)
        await store.subscribe(query(), Recorder())
        await raw.set(f"{prefix}:k", "1")
        assert await calls.next() == [("k", "1")]
        assert await calls.quiet()
        await keys.close()
