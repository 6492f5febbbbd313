"""The transactional outbox on every transactional store of cases.yaml that can list its keys:
a transaction's upserts are published if and only if it commits, at least once, even when the
publish fails for a while (the broker cut) or the relay stops and another starts.

The publisher here is a recording function that can be cut (it raises Unavailable, as the
pubsub capability does for an unreachable broker); tests/e2e/test_outbox.py runs the same
story through a real ``pylotto run``, the Dapr SDK and a Redis broker behind a proxy.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities import outbox
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.pubsub import PublishRequest
from pylotto.capabilities.state import StateCapability, StateItem, StateOperation
from pylotto.components.state.base import DeleteRequest, KeyListingStateStore, StateStore
from pylotto.config.model import AppConfig
from pylotto.core.errors import ComponentNotFound, EtagMismatch, Internal, Unavailable
from tests.conformance.cases import Case, build, load_cases
from tests.conformance.conftest import STORE

pytestmark = pytest.mark.timeout(120)

TOPIC = "orders"
PUBSUB = "bus"


class Broker:
    """Records what is published; ``cut`` makes every publish fail until ``restore``."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.up = True
        self.refused = 0

    async def publish(self, request: PublishRequest) -> None:
        if not self.up:
            self.refused += 1
            raise Unavailable(f"error when publish to topic {request.topic}: broker cut")
        assert (request.pubsub_name, request.topic) == (PUBSUB, TOPIC)
        self.events.append(json.loads(request.data))

    def data(self) -> list[Any]:
        return [event.get("data") for event in self.events]


def listing_cases() -> list[object]:
    return load_cases("state", where=lambda c: c.has("TRANSACTIONAL")
                      and c.type not in ("state.json-file", "state.pluggable"))


@pytest.fixture(params=listing_cases())
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


@pytest.fixture
async def store(case: Case, tmp_path: Path) -> AsyncIterator[StateStore]:
    async with build(case, tmp_path, keyPrefix="appid", outboxPublishPubsub=PUBSUB,
                     outboxPublishTopic=TOPIC) as component:
        assert isinstance(component, KeyListingStateStore)
        yield component


def capability(store: StateStore, broker: Broker, app_id: str) -> StateCapability:
    state = StateCapability(ComponentSet("state store", {STORE: store}),
                            RuntimeContext(AppConfig(app_id=app_id), Path("/nonexistent")))
    state.publish = broker.publish
    return state


@pytest.fixture
def app_id() -> str:
    """An app id of its own per test: its records are only its own (the stores are shared)."""
    return f"outbox-{uuid.uuid4().hex[:10]}"


async def records_left(store: StateStore, app_id: str) -> list[str]:
    assert isinstance(store, KeyListingStateStore)
    return await store.keys_with_prefix(outbox.record_prefix(app_id), 1000)


async def eventually(check: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def upsert(key: str, value: bytes, **metadata: str) -> StateOperation:
    return StateOperation("upsert", StateItem(key, value, metadata=metadata))


async def test_a_committed_transaction_is_published_in_order_and_its_records_deleted(
    store: StateStore, app_id: str
) -> None:
    broker = Broker()
    state = capability(store, broker, app_id)
    await state.start()
    try:
        await state.save_state(STORE, [StateItem("gone", b"x")])
        await state.execute_state_transaction(STORE, [
            upsert("a", b'{"n": 1}', contentType="application/json"),
            StateOperation("delete", StateItem("gone")),
            upsert("b", b"two"),
        ])
        await eventually(lambda: _true(len(broker.events) == 2))
        assert broker.data() == [{"n": 1}, "two"]
        first = broker.events[0]
        assert (first["topic"], first["pubsubname"], first["source"]) == (TOPIC, PUBSUB, app_id)
        assert first["datacontenttype"] == "application/json"
        assert first["contentType"] == "application/json"  # op metadata, copied as Dapr does
        await eventually(lambda: _empty(store, app_id))
        assert (await state.get_state(STORE, "a")).value == b'{"n": 1}'
    finally:
        await state.stop()


async def test_a_rolled_back_transaction_publishes_nothing(
    store: StateStore, app_id: str
) -> None:
    broker = Broker()
    state = capability(store, broker, app_id)
    await state.start()
    try:
        await state.save_state(STORE, [StateItem("k", b"v1")])
        stale = (await state.get_state(STORE, "k")).etag
        await state.save_state(STORE, [StateItem("k", b"v2")])
        with pytest.raises(EtagMismatch):
            await state.execute_state_transaction(STORE, [
                upsert("new", b"never"),
                StateOperation("upsert", StateItem("k", b"stale", etag=stale)),
            ])
        await state.execute_state_transaction(STORE, [upsert("marker", b"after")])
        await eventually(lambda: _true(broker.data() == ["after"]))
        await asyncio.sleep(0.3)
        assert broker.data() == ["after"]
        assert await records_left(store, app_id) == []
        assert (await state.get_state(STORE, "new")).value == b""
    finally:
        await state.stop()


async def test_nothing_is_lost_while_the_broker_is_cut(store: StateStore, app_id: str) -> None:
    broker = Broker()
    state = capability(store, broker, app_id)
    await state.start()
    try:
        broker.up = False
        for n in range(5):
            await state.execute_state_transaction(STORE, [upsert(f"k{n}", str(n).encode())])
        with pytest.raises(EtagMismatch):
            await state.execute_state_transaction(STORE, [
                upsert("rolled-back", b"no"),
                StateOperation("delete", StateItem("k0", etag="999999999"))])
        await eventually(lambda: _true(broker.refused >= 1))
        assert broker.events == []
        assert len(await records_left(store, app_id)) == 5  # kept, in the store
        broker.up = True
        await eventually(lambda: _true(len(broker.events) >= 5))
        await eventually(lambda: _empty(store, app_id))
        assert sorted(set(broker.data())) == ["0", "1", "2", "3", "4"]
        assert "no" not in broker.data()
    finally:
        await state.stop()


async def test_records_left_by_a_stopped_relay_are_published_by_the_next(
    store: StateStore, app_id: str
) -> None:
    cut = Broker()
    cut.up = False
    first = capability(store, cut, app_id)
    await first.start()
    await first.execute_state_transaction(STORE, [upsert("a", b"1"), upsert("b", b"2")])
    await first.stop()
    assert len(await records_left(store, app_id)) == 2
    broker = Broker()
    second = capability(store, broker, app_id)
    await second.start()  # a restarted sidecar
    try:
        await eventually(lambda: _true(broker.data() == ["1", "2"]))  # oldest first
        ids = [event["id"] for event in broker.events]
        assert len(set(ids)) == 2
        await eventually(lambda: _empty(store, app_id))
    finally:
        await second.stop()


async def test_a_projection_is_published_instead_of_the_saved_value(
    store: StateStore, app_id: str
) -> None:
    broker = Broker()
    state = capability(store, broker, app_id)
    await state.start()
    try:
        await state.execute_state_transaction(STORE, [
            upsert("order", b'{"id": 1, "secret": "s"}', contentType="application/json"),
            upsert("order", b'{"id": 1}', **{"outbox.projection": "true",
                                             "contentType": "application/json"}),
        ])
        await eventually(lambda: _true(len(broker.events) == 1))
        assert broker.data() == [{"id": 1}]
        assert (await state.get_state(STORE, "order")).value == b'{"id": 1, "secret": "s"}'
        await asyncio.sleep(0.2)
        assert len(broker.events) == 1
    finally:
        await state.stop()


async def test_a_missing_pubsub_fails_the_transaction(store: StateStore, app_id: str) -> None:
    """As Dapr's (its publish to the internal topic fails first): nothing is written."""
    broker = Broker()
    state = capability(store, broker, app_id)

    def lookup(name: str) -> None:
        raise ComponentNotFound(f"pubsub {name} is not found")

    state.pubsub_exists = lookup
    with pytest.raises(Internal, match="error while publishing outbox message: pubsub bus"):
        await state.execute_state_transaction(STORE, [upsert("k", b"v")])
    assert (await state.get_state(STORE, "k")).value == b""
    assert await records_left(store, app_id) == []


async def test_hot_reload_detach_then_attach_restarts_the_relay(
    store: StateStore, app_id: str
) -> None:
    broker = Broker()
    broker.up = False
    state = capability(store, broker, app_id)
    await state.start()
    try:
        await state.execute_state_transaction(STORE, [upsert("k", b"v")])
        await state.detach(STORE)
        broker.up = True
        await asyncio.sleep(0.3)
        assert broker.events == [] and len(await records_left(store, app_id)) == 1
        await state.attach(STORE)  # the component came back: its relay publishes what waits
        await eventually(lambda: _true(broker.data() == ["v"]))
        await eventually(lambda: _empty(store, app_id))
    finally:
        await state.stop()


async def test_a_foreign_key_under_the_record_prefix_is_left_alone(
    store: StateStore, app_id: str
) -> None:
    """Something that is not an outbox record (written by hand under the prefix) is logged
    and left; the relay goes on publishing the real ones."""
    from pylotto.components.state.base import SetRequest

    junk = outbox.record_prefix(app_id) + "00000000000000000000-junk"
    await store.bulk_set([SetRequest(junk, b"not json")])
    broker = Broker()
    state = capability(store, broker, app_id)
    await state.start()
    try:
        await state.execute_state_transaction(STORE, [upsert("k", b"v")])
        await eventually(lambda: _true(broker.data() == ["v"]))
        assert await records_left(store, app_id) == [junk]
    finally:
        await state.stop()
        await store.bulk_delete([DeleteRequest(junk)])


async def _true(value: bool) -> bool:
    return value


async def _empty(store: StateStore, app_id: str) -> bool:
    return await records_left(store, app_id) == []
