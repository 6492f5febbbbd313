"""Subscription streams: every change in order, filters, and closing one stream only."""

from __future__ import annotations

import asyncio

import pytest

from pylotto.capabilities import configuration as configuration_module
from pylotto.capabilities.configuration import (
    ConfigurationCapability,
    ConfigurationStream,
    ConfigurationUpdate,
)
from pylotto.components.configuration.base import ConfigurationItem
from pylotto.core.errors import ComponentNotFound, Unavailable

Item = ConfigurationItem


async def drain(stream: ConfigurationStream, count: int) -> list[ConfigurationUpdate]:
    """The next ``count`` updates (fails the test if they do not come within a second)."""
    got: list[ConfigurationUpdate] = []

    async def read() -> None:
        async for update in stream:
            got.append(update)
            if len(got) == count:
                return

    await asyncio.wait_for(read(), 1)
    return got


def contents(updates: list[ConfigurationUpdate]) -> list[list[tuple[str, str]]]:
    return [[(i.key, i.content) for i in u.items] for u in updates]


async def test_every_change_arrives_in_order(config: ConfigurationCapability) -> None:
    stream = config.open_stream()
    await stream.subscribe("config", keys=["k", "j"])
    for n in range(20):
        await config.save_configuration("config", "", [Item("k", f"v{n}")])
    await config.save_configuration("config", "", [Item("j", "x"), Item("k", "last"),
                                                   Item("unwatched", "y")])
    await config.delete_configuration("config", keys=["k"])
    await config.save_configuration("config", "", [Item("j", "")])
    updates = await drain(stream, 23)
    assert contents(updates) == [
        *([("k", f"v{n}")] for n in range(20)),
        [("j", "x"), ("k", "last")],
        [("k", "")],
        [("j", "")],
    ]
    assert {(u.store_name, u.app_id) for u in updates} == {("config", "app")}
    assert updates[0].items[0].group == "default"
    await stream.close()


async def test_empty_keys_watch_the_whole_group(config: ConfigurationCapability) -> None:
    stream = config.open_stream()
    await stream.subscribe("config", group="g")
    await config.save_configuration("config", "", [Item("a", "1")])  # default group
    await config.save_configuration("config", "", [Item("b", "2", group="g")])
    await config.save_configuration("config", "other", [Item("c", "3", group="g")])
    assert contents(await drain(stream, 1)) == [[("b", "2")]]
    await stream.close()


async def test_one_stream_many_subscriptions(config: ConfigurationCapability) -> None:
    stream = config.open_stream()
    await stream.subscribe("config", keys=["a"])
    await stream.subscribe("config", app_id="other", keys=["b"])
    await config.save_configuration("config", "", [Item("a", "1")])
    await config.save_configuration("config", "other", [Item("b", "2")])
    updates = await drain(stream, 2)
    assert [(u.app_id, u.items[0].key) for u in updates] == [("app", "a"), ("other", "b")]
    await stream.close()


async def test_closing_a_stream_leaves_the_others(config: ConfigurationCapability) -> None:
    first, second = config.open_stream(), config.open_stream()
    await first.subscribe("config", keys=["k"])
    await second.subscribe("config", keys=["k"])
    await first.close()
    await config.save_configuration("config", "", [Item("k", "v")])
    assert contents(await drain(second, 1)) == [[("k", "v")]]
    assert [u async for u in first] == []  # ended normally, nothing after the close
    await second.close()


async def test_unknown_store_fails_the_stream(config: ConfigurationCapability) -> None:
    stream = config.open_stream()
    await stream.subscribe("config", keys=["k"])
    with pytest.raises(ComponentNotFound):
        await stream.subscribe("nope", keys=["k"])
    await stream.fail(ComponentNotFound("configuration store nope is not found"))
    await config.save_configuration("config", "", [Item("k", "v")])
    with pytest.raises(ComponentNotFound, match="nope"):
        await drain(stream, 1)


async def test_stop_ends_every_stream(config: ConfigurationCapability) -> None:
    stream = config.open_stream()
    await stream.subscribe("config")
    reader = asyncio.create_task(drain(stream, 5))
    await asyncio.sleep(0)
    await config.stop()
    assert await reader == []


async def test_a_reader_that_falls_behind_is_cut_off(
    config: ConfigurationCapability, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(configuration_module, "MAX_PENDING_UPDATES", 3)
    stream = config.open_stream()
    await stream.subscribe("config", keys=["k"])
    for n in range(5):
        await config.save_configuration("config", "", [Item("k", str(n))])
    got = []
    with pytest.raises(Unavailable, match="fell behind"):
        async for update in stream:
            got.append(update)
    assert contents(got) == [[("k", "0")], [("k", "1")], [("k", "2")]]
    await stream.close()
