"""The configuration API: validation, defaults, get/save/delete semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.configuration import ConfigurationCapability
from pylotto.components.configuration.base import ConfigurationItem
from pylotto.config.model import AppConfig
from pylotto.core.errors import ComponentNotFound, InvalidArgument, NotConfigured

Item = ConfigurationItem


async def test_nothing_configured() -> None:
    empty = ConfigurationCapability(ComponentSet("configuration store", {}),
                                    RuntimeContext(AppConfig(app_id="a"), Path("/x")))
    with pytest.raises(NotConfigured, match="configuration store is not configured"):
        await empty.get_configuration("config", keys=["k"])
    with pytest.raises(NotConfigured):
        await empty.save_configuration("config", "", [Item("k", "v")])
    with pytest.raises(NotConfigured):
        await empty.delete_configuration("config", keys=["k"])
    with pytest.raises(NotConfigured):
        await empty.open_stream().subscribe("config")


async def test_store_name_checks(config: ConfigurationCapability) -> None:
    with pytest.raises(InvalidArgument, match="name is empty"):
        await config.get_configuration("", keys=["k"])
    with pytest.raises(ComponentNotFound, match="configuration store nope is not found"):
        await config.get_configuration("nope", keys=["k"])
    with pytest.raises(ComponentNotFound):
        await config.save_configuration("nope", "", [Item("k", "v")])
    with pytest.raises(ComponentNotFound):
        await config.delete_configuration("nope", keys=["k"])


async def test_item_checks(config: ConfigurationCapability) -> None:
    with pytest.raises(InvalidArgument, match="key is empty"):
        await config.save_configuration("config", "", [Item("", "v")])
    with pytest.raises(InvalidArgument, match="no configuration items"):
        await config.save_configuration("config", "", [])
    with pytest.raises(InvalidArgument, match="key is empty"):
        await config.get_configuration("config", keys=["a", ""])


async def test_save_then_get_with_defaults(config: ConfigurationCapability) -> None:
    await config.save_configuration("config", "", [
        Item("db", "postgres://x", tags={"env": "prod"}, metadata={"m": "1"}),
        Item("cache", "redis://y", group="  ", label=""),
    ])
    items = await config.get_configuration("config", keys=["db", "missing", "cache"])
    assert items == [
        Item("db", "postgres://x", "default", "default", {"env": "prod"}, {"m": "1"}),
        Item("cache", "redis://y", "default", "default"),
    ]
    # an explicit app id equal to the sidecar's is the same app
    assert await config.get_configuration("config", "app", "default", "default", ["db"]) \
        == items[:1]


async def test_empty_keys_means_every_item_of_the_group(config: ConfigurationCapability) -> None:
    await config.save_configuration("config", "", [
        Item("b", "2"), Item("a", "1"), Item("c", "3", group="other"),
        Item("d", "4", label="canary"),
    ])
    everything = await config.get_configuration("config")
    assert [(i.key, i.content) for i in everything] == [("a", "1"), ("b", "2")]
    other = await config.get_configuration("config", group="other")
    assert [i.key for i in other] == ["c"]
    canary = await config.get_configuration("config", label="canary")
    assert [i.key for i in canary] == ["d"]


async def test_apps_are_separate(config: ConfigurationCapability) -> None:
    await config.save_configuration("config", "app1", [Item("k", "one")])
    await config.save_configuration("config", "app2", [Item("k", "two")])
    assert (await config.get_configuration("config", "app1", keys=["k"]))[0].content == "one"
    assert (await config.get_configuration("config", "app2", keys=["k"]))[0].content == "two"
    assert await config.get_configuration("config", keys=["k"]) == []


async def test_save_replaces_and_empty_content_deletes(config: ConfigurationCapability) -> None:
    await config.save_configuration("config", "", [Item("k", "v1", tags={"t": "1"})])
    await config.save_configuration("config", "", [Item("k", "v2")])
    assert await config.get_configuration("config", keys=["k"]) == [
        Item("k", "v2", "default", "default")
    ]
    await config.save_configuration("config", "", [Item("k", ""), Item("j", "kept")])
    assert await config.get_configuration("config", keys=["k", "j"]) == [
        Item("j", "kept", "default", "default")
    ]


async def test_delete(config: ConfigurationCapability) -> None:
    await config.save_configuration("config", "", [
        Item("a", "1"), Item("b", "2"), Item("a", "g", group="g"),
    ])
    await config.delete_configuration("config", keys=["a", "never"])
    assert [i.key for i in await config.get_configuration("config")] == ["b"]
    assert [i.key for i in await config.get_configuration("config", group="g")] == ["a"]
    await config.delete_configuration("config")  # no keys: nothing is deleted
    assert [i.key for i in await config.get_configuration("config")] == ["b"]
