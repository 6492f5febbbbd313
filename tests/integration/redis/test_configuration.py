"""The Redis configuration store: storage layout, one pub/sub channel per app, group and label,
ordered change notifications across instances, and the end of delivery on close."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from pylotto.components.configuration.base import ConfigurationItem, ItemsQuery
from pylotto.components.configuration.redis import channel_name, hash_key, seq_key
from tests.integration.redis.conftest import WAIT, Builder, Recorder


def item(key: str, content: str, group: str = "g", label: str = "l",
         **extra: dict[str, str]) -> ConfigurationItem:
    return ConfigurationItem(key, content, group, label, **extra)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def subscribers(raw: Redis, channel: str) -> int:
    [(_, count)] = await raw.pubsub_numsub(channel)
    return int(count)


async def test_configuration_layout_and_notifications(
    build: Builder, prefix: str, raw: Redis
) -> None:
    app = f"{prefix}-app"
    watcher = raw.pubsub()
    await watcher.subscribe(channel_name(app, "g", "l"))
    assert (await watcher.get_message(timeout=WAIT) or {}).get("type") == "subscribe"

    async def published() -> Any:
        message = await watcher.get_message(ignore_subscribe_messages=True, timeout=WAIT)
        assert message is not None
        return json.loads(message["data"])

    try:
        async with build("configuration") as store:
            await store.set(app, [
                item("db", "postgres://x", tags={"env": "prod"}, metadata={"owner": "ops"}),
                item("elsewhere", "y", group="g2"),
            ], {})
            stored = await raw.hgetall(hash_key(app, "g", "l"))
            assert {k: json.loads(v) for k, v in stored.items()} == {
                b"db": {"content": "postgres://x", "tags": {"env": "prod"},
                        "metadata": {"owner": "ops"}},
            }
            assert await raw.hkeys(hash_key(app, "g2", "l")) == [b"elsewhere"]
            assert await raw.get(seq_key(app, "g", "l")) == b"1"
            assert await published() == {"seq": 1, "items": [["db", _text(stored[b"db"])]]}

            await store.delete(ItemsQuery(app, "g", "l", ("absent",)))  # changes nothing
            assert await raw.get(seq_key(app, "g", "l")) == b"1"
            await store.delete(ItemsQuery(app, "g", "l", ("db", "absent")))
            assert await published() == {"seq": 2, "items": [["db", ""]]}
            assert await raw.exists(hash_key(app, "g", "l")) == 0
            assert await watcher.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    finally:
        await watcher.aclose()  # type: ignore[no-untyped-call]


async def test_subscriptions_listen_on_their_own_channel(
    build: Builder, prefix: str, raw: Redis
) -> None:
    app = f"{prefix}-app"
    channel = channel_name(app, "g", "l")
    async with build("configuration") as store:
        everything, only_k = Recorder(), Recorder()
        first = await store.subscribe(ItemsQuery(app, "g", "l"), everything)
        second = await store.subscribe(ItemsQuery(app, "g", "l", ("k",)), only_k)
        assert await subscribers(raw, channel) == 1  # one connection serves both
        assert await subscribers(raw, channel_name(app, "g2", "l")) == 0
        await first.close()
        assert await subscribers(raw, channel) == 1
        await store.set(app, [item("k", "v")], {})
        assert await only_k.next() == [("k", "v")]
        await second.close()
        await second.close()  # closing twice is harmless
        deadline = time.monotonic() + WAIT
        while await subscribers(raw, channel) != 0:
            assert time.monotonic() < deadline, "the unused channel was not unsubscribed"
            await asyncio.sleep(0.05)
        await store.set(app, [item("k", "w")], {})
        assert await everything.quiet() and await only_k.quiet()


async def test_changes_from_another_instance_arrive_in_order(
    build: Builder, prefix: str
) -> None:
    app = f"{prefix}-app"
    async with build("configuration") as store, \
            build("configuration", name="writer") as writer:
        everything, only_k, other_group = Recorder(), Recorder(), Recorder()
        await store.subscribe(ItemsQuery(app, "g", "l"), everything)
        await store.subscribe(ItemsQuery(app, "g", "l", ("k",)), only_k)
        await store.subscribe(ItemsQuery(app, "g2", "l"), other_group)
        expected: list[tuple[str, str]] = []
        for n in range(30):
            if n % 7 == 6:
                await writer.delete(ItemsQuery(app, "g", "l", ("k", "j")))
                expected += [("k", ""), ("j", "")]
            elif n % 3 == 0:
                await writer.set(app, [item("k", f"k{n}"), item("j", f"j{n}")], {})
                expected += [("k", f"k{n}"), ("j", f"j{n}")]
            else:
                await writer.set(app, [item("k", f"k{n}")], {})
                expected.append(("k", f"k{n}"))
        await writer.set(f"{app}-other", [item("k", "other app")], {})
        await writer.set(app, [item("x", "g2", group="g2")], {})
        assert await everything.changes(len(expected)) == expected
        assert await only_k.changes(sum(1 for k, _ in expected if k == "k")) == \
            [change for change in expected if change[0] == "k"]
        assert await other_group.next() == [("x", "g2")]
        assert await everything.quiet() and await only_k.quiet()


async def test_the_items_of_one_change_arrive_in_one_call(build: Builder, prefix: str) -> None:
    app = f"{prefix}-app"
    async with build("configuration") as store:
        recorder = Recorder()
        await store.subscribe(ItemsQuery(app, "g", "l"), recorder)
        await store.set(app, [item("a", "1", tags={"t": "1"}), item("b", "2")], {})
        call = await asyncio.wait_for(recorder.calls.get(), WAIT)
        assert [(i.key, i.content, i.group, i.label) for i in call] == [
            ("a", "1", "g", "l"), ("b", "2", "g", "l")]
        assert call[0].tags == {"t": "1"}


async def test_a_failing_handler_does_not_stop_the_others(build: Builder, prefix: str) -> None:
    app = f"{prefix}-app"

    def failing(items: Sequence[ConfigurationItem]) -> None:
        raise RuntimeError("handler bug")

    async with build("configuration") as store:
        recorder = Recorder()
        await store.subscribe(ItemsQuery(app, "g", "l"), failing)
        await store.subscribe(ItemsQuery(app, "g", "l"), recorder)
        await store.set(app, [item("k", "1")], {})
        await store.set(app, [item("k", "2")], {})
        assert await recorder.changes(2) == [("k", "1"), ("k", "2")]
        assert store.listening.is_set()


async def test_close_stops_the_subscriptions(build: Builder, prefix: str, raw: Redis) -> None:
    app = f"{prefix}-app"
    channel = channel_name(app, "g", "l")
    async with build("configuration") as store, \
            build("configuration", name="writer") as writer:
        recorder = Recorder()
        subscription = await store.subscribe(ItemsQuery(app, "g", "l"), recorder)
        assert store.listening.is_set()
        await store.close()
        assert not store.listening.is_set()
        deadline = time.monotonic() + WAIT
        while await subscribers(raw, channel) != 0:
            assert time.monotonic() < deadline, "the pub/sub connection stayed open"
            await asyncio.sleep(0.05)
        await writer.set(app, [item("k", "v")], {})
        assert await recorder.quiet()
        await subscription.close()  # after the store: harmless
