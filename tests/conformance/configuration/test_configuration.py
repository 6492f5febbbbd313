"""The configuration conformance suite: every test runs against every case of cases.yaml."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.configuration import (
    ConfigurationCapability,
    ConfigurationStream,
    ConfigurationUpdate,
)
from pylotto.components.base import Component
from pylotto.components.configuration.base import (
    ConfigurationItem,
    ConfigurationStore,
    Feature,
)
from pylotto.config.model import AppConfig
from pylotto.core.errors import Unavailable
from tests.conformance.cases import (
    RUN_PREFIX,
    Case,
    FallsBack,
    Refused,
    Undeclared,
    assert_declares_exactly,
    build,
    load_cases,
    once_back,
    undeclared,
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


def own_keys(case: Case, app_id: str) -> dict[str, str]:
    """Metadata giving a store that keeps items by key only a key prefix of the test's own."""
    return {"keyPrefix": f"{app_id}:"} if "keyPrefix" in case.metadata else {}


def with_feature(feature: Feature) -> list[object]:
    return load_cases("configuration", where=lambda c: c.has(feature))


@pytest.fixture
async def store(case: Case, tmp_path: Path, app_id: str) -> AsyncIterator[ConfigurationStore]:
    async with build(case, tmp_path, **own_keys(case, app_id)) as component:
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


def through_capability(use: Callable[[ConfigurationCapability, str], Awaitable[object]]
                       ) -> Callable[[Case, Component], Awaitable[None]]:
    async def call(case: Case, component: Component) -> None:
        assert isinstance(component, ConfigurationStore)
        config = ConfigurationCapability(
            ComponentSet("configuration store", {component.name: component}),
            RuntimeContext(AppConfig(app_id="conformance"), Path("/nonexistent")))
        await use(config, component.name)
    return call


async def _the_last_change_arrives(case: Case, component: Component) -> None:
    """Without EVERY_CHANGE: after quick writes a subscriber still ends on the last value."""
    assert isinstance(component, ConfigurationStore)
    config = capability_over(component, "conformance")
    stream = config.open_stream()
    await stream.subscribe(STORE, keys=["quick"])
    for n in range(10):
        await config.save_configuration(STORE, "", [item("quick", f"v{n}")])
    updates = aiter(stream)
    last = ""
    while last != "v9":
        update = await next_update(updates)
        last = update.items[-1].content
    await config.delete_configuration(STORE, keys=["quick"])
    while last:
        last = (await next_update(updates)).items[-1].content
    await stream.close()


UNDECLARED: dict[str, Undeclared] = {
    Feature.GROUPS: Refused(through_capability(lambda config, store: config.get_configuration(
        store, group="g1", keys=["k"])), "configuration store {store} doesn't support groups"),
    Feature.TAGS: Refused(through_capability(lambda config, store: config.save_configuration(
        store, "", [item("k", "v", tags={"env": "prod"})])),
        "configuration store {store} doesn't support tags"),
    Feature.EVERY_CHANGE: FallsBack(_the_last_change_arrives),
}


@pytest.mark.parametrize(("case", "feature"), undeclared("configuration", UNDECLARED),
                         indirect=["case"])
async def test_an_undeclared_feature_is_refused_or_made_up_for(
    case: Case, feature: str, tmp_path: Path, app_id: str
) -> None:
    async with build(case, tmp_path, **own_keys(case, app_id)) as component:
        await UNDECLARED[feature].check(case, component)


async def test_save_get_delete(case: Case, config: ConfigurationCapability) -> None:
    tags = {"tags": {"env": "prod"}, "metadata": {"owner": "ops"}} if case.has(Feature.TAGS) \
        else {}
    await config.save_configuration(STORE, "", [
        item("db", "postgres://x", **tags), item("cache", "redis://y"),
    ])
    got = await config.get_configuration(STORE, keys=["db", "cache", "absent"])
    assert [(i.key, i.content) for i in got] == [("db", "postgres://x"), ("cache", "redis://y")]
    if tags:
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


@pytest.mark.parametrize("case", with_feature(Feature.GROUPS), indirect=True)
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


@pytest.mark.parametrize("case", with_feature(Feature.EVERY_CHANGE), indirect=True)
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


async def test_subscription_to_keys_sees_only_those(
    case: Case, config: ConfigurationCapability
) -> None:
    stream = config.open_stream()
    await stream.subscribe(STORE, keys=["watched"])
    updates = aiter(stream)
    await config.save_configuration(STORE, "", [item("ignored", "x")])
    await config.save_configuration(STORE, "", [item("watched", "1")])
    await config.save_configuration(STORE, "", [item("ignored", "y"), item("watched", "2")])
    seen = await changes(updates, 2)
    if case.has(Feature.EVERY_CHANGE):
        assert seen == [("watched", "1"), ("watched", "2")]
    else:  # each notification reads the key: the first may already see "2"
        assert {key for key, _ in seen} == {"watched"} and seen[-1] == ("watched", "2")
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
    async with build(case, tmp_path, instance="-writer",
                     **own_keys(case, app_id)) as writer_store:
        assert isinstance(writer_store, ConfigurationStore)
        writer = capability_over(writer_store, app_id)
        stream: ConfigurationStream = config.open_stream()
        await stream.subscribe(STORE)
        for n in range(10):
            await writer.save_configuration(STORE, "", [item("k", f"v{n}")])
        if case.has(Feature.EVERY_CHANGE):
            assert await changes(aiter(stream), 10) == [("k", f"v{n}") for n in range(10)]
        else:
            updates, last = aiter(stream), ("", "")
            while last != ("k", "v9"):
                last = (await changes(updates, 1))[-1]
        assert [i.content for i in await config.get_configuration(STORE)] == ["v9"]
        await stream.close()


@pytest.mark.parametrize("case", load_cases("configuration", where=lambda c: bool(c.proxy)),
                         indirect=True)
async def test_outage_gives_unavailable_then_recovers(
    case: Case, tmp_path: Path, app_id: str
) -> None:
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        async with build(case, tmp_path, **case.via_proxy(proxy.port),
                         **own_keys(case, app_id)) as component, \
                build(case, tmp_path, instance="-direct", **own_keys(case, app_id)) as direct:
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
