"""The configuration conformance suite: every test runs against every case of cases.yaml."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.configuration import (
    ConfigurationCapability,
    ConfigurationStream,
    ConfigurationUpdate,
)
from pylotto.components.configuration.base import ConfigurationItem, ConfigurationStore
from pylotto.config.model import AppConfig
from pylotto.core.errors import Unavailable
from tests.conformance.cases import (
    RUN_PREFIX,
    Case,
    assert_declares_exactly,
    build,
    load_cases,
    once_back,
)
from tests.conformance.conftest import STORE
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)
WAIT = 10.0
"""Seconds a change may take to reach a subscriber."""


@pytest.fixture(params=load_cases("configuration"))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


def capability_over(store: ConfigurationStore, app_id: str) -> ConfigurationCapability:
    return ConfigurationCapability(ComponentSet("configuration store", {STORE: store}),
                                   RuntimeContext(AppConfig(app_id=app_id), Path("/nonexistent")))


@pytest.fixture
def app_id() -> str:
    """An app id of the test's own: items of other tests and runs are never seen."""
    return f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def store(case: Case, tmp_path: Path) -> AsyncIterator[ConfigurationStore]:
    async with build(case, tmp_path) as component:
        assert isinstance(component, ConfigurationStore)
        yield component


@pytest.fixture
def config(store: ConfigurationStore, app_id: str) -> ConfigurationCapability:
    return capability_over(store, app_id)


def item(key: str, content: str, **extra: object) -> ConfigurationItem:
    return ConfigurationItem(key=key, content=content, **extra)  # type: ignore[arg-type]


async def next_update(updates: AsyncIterator[ConfigurationUpdate]) -> ConfigurationUpdate:
    return await asyncio.wait_for(anext(updates), WAIT)


async def changes(updates: AsyncIterator[ConfigurationUpdate],
                  count: int) -> list[tuple[str, str]]:
    """(key, content) of the next ``count`` changed items, in the order they arrived."""
    seen: list[tuple[str, str]] = []
    while len(seen) < count:
        update = await next_update(updates)
        seen += [(i.key, i.content) for i in update.items]
    return seen


async def test_declares_exactly_the_case_features(case: Case, tmp_path: Path) -> None:
    async with build(case, tmp_path) as component:
        assert_declares_exactly(case, component)


async def test_save_get_delete(config: ConfigurationCapability) -> None:
    await config.save_configuration(STORE, "", [
        item("db", "postgres://x", tags={"env": "prod"}, metadata={"owner": "ops"}),
        item("cache", "redis://y"),
    ])
    got = await config.get_configuration(STORE, keys=["db", "cache", "absent"])
    assert [(i.key, i.content) for i in got] == [("db", "postgres://x"), ("cache", "redis://y")]
    assert got[0].tags == {"env": "prod"} and got[0].metadata == {"owner": "ops"}
    assert got[0].group == "default" and got[0].label == "default"
    everything = await config.get_configuration(STORE)
    assert sorted(i.key for i in everything) == ["cache", "db"]
    await config.save_configuration(STORE, "", [item("db", "postgres://z")])
    assert [i.content for i in await config.get_configuration(STORE, keys=["db"])] == \
        ["postgres://z"]
    await config.delete_configuration(STORE, keys=["db", "absent"])
    assert [i.key for i in await config.get_configuration(STORE)] == ["cache"]
    await config.save_configuration(STORE, "", [item("cache", "")])  # empty content deletes
    assert await config.get_configuration(STORE) == []


async def test_groups_labels_and_apps_are_separate(
    store: ConfigurationStore, config: ConfigurationCapability, app_id: str
) -> None:
    await config.save_configuration(STORE, "", [
        item("k", "default"), item("k", "blue", group="g1"), item("k", "canary", label="l1"),
    ])
    await config.save_configuration(STORE, f"{app_id}-other", [item("k", "other app")])
    assert [i.content for i in await config.get_configuration(STORE, keys=["k"])] == ["default"]
    assert [i.content for i in await config.get_configuration(STORE, group="g1")] == ["blue"]
    assert [i.content for i in await config.get_configuration(STORE, label="l1")] == ["canary"]
    other = capability_over(store, f"{app_id}-other")
    assert [i.content for i in await other.get_configuration(STORE)] == ["other app"]


async def test_subscribe_receives_every_change_in_order(
    config: ConfigurationCapability,
) -> None:
    stream = config.open_stream()
    await stream.subscribe(STORE)
    updates = aiter(stream)
    expected: list[tuple[str, str]] = []
    for n in range(30):
        key = f"k{n % 4}"
        if n % 5 == 4:
            await config.delete_configuration(STORE, keys=[key])
            expected.append((key, ""))
        else:
            await config.save_configuration(STORE, "", [item(key, f"v{n}")])
            expected.append((key, f"v{n}"))
    assert await changes(updates, len(expected)) == expected
    await stream.close()


async def test_subscription_to_keys_sees_only_those(config: ConfigurationCapability) -> None:
    stream = config.open_stream()
    await stream.subscribe(STORE, keys=["watched"])
    updates = aiter(stream)
    await config.save_configuration(STORE, "", [item("ignored", "x")])
    await config.save_configuration(STORE, "", [item("watched", "1")])
    await config.save_configuration(STORE, "", [item("ignored", "y"), item("watched", "2")])
    assert await changes(updates, 2) == [("watched", "1"), ("watched", "2")]
    await stream.close()


async def test_closing_one_stream_leaves_others_working(
    config: ConfigurationCapability,
) -> None:
    first, second = config.open_stream(), config.open_stream()
    await first.subscribe(STORE)
    await second.subscribe(STORE)
    await first.close()
    await config.save_configuration(STORE, "", [item("k", "v")])
    assert await changes(aiter(second), 1) == [("k", "v")]
    assert [u async for u in first] == []
    await second.close()


@pytest.mark.parametrize("case", load_cases("configuration", where=lambda c: c.shared),
                         indirect=True)
async def test_changes_from_another_sidecar_reach_subscribers(
    case: Case, tmp_path: Path, config: ConfigurationCapability, app_id: str
) -> None:
    async with build(case, tmp_path, instance="-writer") as writer_store:
        assert isinstance(writer_store, ConfigurationStore)
        writer = capability_over(writer_store, app_id)
        stream: ConfigurationStream = config.open_stream()
        await stream.subscribe(STORE)
        for n in range(10):
            await writer.save_configuration(STORE, "", [item("k", f"v{n}")])
        assert await changes(aiter(stream), 10) == [("k", f"v{n}") for n in range(10)]
        assert [i.content for i in await config.get_configuration(STORE)] == ["v9"]
        await stream.close()


@pytest.mark.parametrize("case", load_cases("configuration", where=lambda c: bool(c.proxy)),
                         indirect=True)
async def test_outage_gives_unavailable_then_recovers(
    case: Case, tmp_path: Path, app_id: str
) -> None:
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        async with build(case, tmp_path, **case.via_proxy(proxy.port)) as component, \
                build(case, tmp_path, instance="-direct") as direct:
            assert isinstance(component, ConfigurationStore)
            assert isinstance(direct, ConfigurationStore)
            config = capability_over(component, app_id)
            stream = config.open_stream()
            await stream.subscribe(STORE)
            updates = aiter(stream)
            await config.save_configuration(STORE, "", [item("k", "before")])
            assert await changes(updates, 1) == [("k", "before")]
            proxy.cut()
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await config.get_configuration(STORE)
            with pytest.raises(Unavailable):
                await component.ping()
            assert time.monotonic() - started < 20, "calls must fail within their timeout"
            proxy.restore()
            await once_back(lambda: config.get_configuration(STORE))
            # The subscription reconnected: a change made elsewhere still arrives.
            await asyncio.sleep(2)
            await capability_over(direct, app_id).save_configuration(
                STORE, "", [item("k", "after")])
            assert ("k", "after") in await changes(updates, 1)
            await stream.close()
