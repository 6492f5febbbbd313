"""The state conformance suite: every test runs against every case of cases.yaml.

Tests go through the capability layer (what both facades call), so they check the rules users
see: a declared feature works, an undeclared one is refused with Unsupported.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.state import StateCapability, StateItem, StateOperation
from pylotto.components.base import Component
from pylotto.components.state.base import TTL_EXPIRE_TIME, Concurrency, Feature, StateStore
from pylotto.components.state.query import QueryItem, parse_query, sort_and_filter_sequence
from pylotto.config.model import AppConfig
from pylotto.core.errors import EtagMismatch, InvalidArgument, Unavailable, Unsupported
from tests.conformance.cases import (
    RUN_PREFIX,
    Case,
    Refused,
    Undeclared,
    assert_declares_exactly,
    build,
    load_cases,
    once_back,
    undeclared,
)
from tests.conformance.conftest import STORE
from tests.conformance.state.support import (
    MISSING_KEY_TAKES_ETAG,
    capability_over,
    cases_with,
    etag_of,
    redis_etags,
    value_of,
)
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)


# ---- features: declared as cases.yaml lists them, and refused when undeclared ------------------


async def test_declares_exactly_the_case_features(case: Case, tmp_path: Path) -> None:
    async with build(case, tmp_path) as component:
        assert_declares_exactly(case, component)


def through_capability(use: Callable[[StateCapability, str, str], Awaitable[object]]
                       ) -> Callable[[Case, Component], Awaitable[None]]:
    """The call made through a capability that knows the component under its own name."""

    async def call(case: Case, component: Component) -> None:
        assert isinstance(component, StateStore)
        state = StateCapability(ComponentSet("state store", {component.name: component}),
                                RuntimeContext(AppConfig(app_id="conformance"),
                                               Path("/nonexistent")))
        await use(state, component.name, f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}")

    return call


UNDECLARED: dict[str, Undeclared] = {
    Feature.ETAG: Refused(through_capability(lambda state, store, key: state.save_state(
        store, [StateItem(key, b"v", etag="1")])), "state store {store} doesn't support etags"),
    Feature.TTL: Refused(through_capability(lambda state, store, key: state.save_state(
        store, [StateItem(key, b"v", metadata={"ttlInSeconds": "1"})])),
        "state store {store} doesn't support ttlInSeconds"),
    Feature.TRANSACTIONAL: Refused(through_capability(
        lambda state, store, key: state.execute_state_transaction(
            store, [StateOperation("upsert", StateItem(key, b"v"))])),
        "state store {store} doesn't support transaction"),
    Feature.QUERY_API: Refused(through_capability(lambda state, store, key: state.query_state(
        store, {"filter": {"EQ": {"name": key}}})), "state store {store} doesn't support query"),
}
"""What happens to a feature a case does not list: each is refused, naming store and feature."""


@pytest.mark.parametrize(("case", "feature"), undeclared("state", UNDECLARED), indirect=["case"])
async def test_an_undeclared_feature_is_refused(case: Case, feature: str, tmp_path: Path) -> None:
    async with build(case, tmp_path) as component:
        await UNDECLARED[feature].check(case, component)


# ---- basics every store supports --------------------------------------------------------------


async def test_save_get_overwrite_delete(state: StateCapability, key: str) -> None:
    assert await value_of(state, key) == b""
    await state.save_state(STORE, [StateItem(key, b"one")])
    assert await value_of(state, key) == b"one"
    await state.save_state(STORE, [StateItem(key, b"two")])
    assert await value_of(state, key) == b"two"
    await state.delete_state(STORE, StateItem(key))
    missing = await state.get_state(STORE, key)
    assert missing.value == b"" and not missing.etag
    await state.delete_state(STORE, StateItem(key))  # deleting an absent key is no error


async def test_bulk_get_keeps_order_and_reports_missing_keys(
    state: StateCapability, key: str
) -> None:
    keys = [f"{key}-{i}" for i in range(3)]
    await state.save_state(STORE, [StateItem(k, k.encode()) for k in keys])
    asked = [keys[2], f"{key}-absent", keys[0], keys[1]]
    items = await state.get_bulk_state(STORE, asked)
    assert [i.key for i in items] == asked
    assert [i.value for i in items] == [keys[2].encode(), b"", keys[0].encode(),
                                        keys[1].encode()]
    assert all(not i.error for i in items)
    await state.delete_bulk_state(STORE, [StateItem(k) for k in keys])
    assert all(i.value == b"" for i in await state.get_bulk_state(STORE, keys))


async def test_a_bulk_get_of_300_keys(state: StateCapability, key: str) -> None:
    # more keys than etcd takes in one transaction (128): read in several
    keys = [f"{key}-{i}" for i in range(300)]
    for start in range(0, len(keys), 100):
        await state.save_state(STORE, [StateItem(k, k.encode()) for k in keys[start:start + 100]])
    items = await state.get_bulk_state(STORE, keys[::-1])
    assert [(i.key, i.value) for i in items] == [(k, k.encode()) for k in keys[::-1]]
    for start in range(0, len(keys), 100):
        await state.delete_bulk_state(STORE, [StateItem(k) for k in keys[start:start + 100]])


@pytest.mark.parametrize("size", [1, 1024 * 1024], ids=["1B", "1MiB"])
async def test_values_round_trip_byte_for_byte(
    case: Case, state: StateCapability, key: str, size: int
) -> None:
    if "values-under-1MiB" in case.traits:  # ZooKeeper: jute.maxbuffer is just under 1 MiB
        size = min(size, 1000 * 1000)
    value = os.urandom(size)
    await state.save_state(STORE, [StateItem(key, value)])
    assert await value_of(state, key) == value
    [item] = await state.get_bulk_state(STORE, [key])
    assert item.value == value


async def test_json_values_come_back_unchanged(state: StateCapability, key: str) -> None:
    value = b'{"b": 1,  "a": [1.50, "\\u00e9"]}'
    await state.save_state(STORE, [StateItem(key, value)])
    assert await value_of(state, key) == value


async def test_unicode_keys(state: StateCapability, key: str) -> None:
    keys = [f"{key}-ключ", f"{key}-キー-🔑", f"{key}-Key", f"{key}-key"]
    await state.save_state(STORE, [StateItem(k, k.encode()) for k in keys])
    for k in keys:
        assert await value_of(state, k) == k.encode()
    items = await state.get_bulk_state(STORE, keys)
    assert [i.value for i in items] == [k.encode() for k in keys]


async def test_a_key_with_nul_reads_the_same_single_and_bulk(
    state: StateCapability, store: StateStore, key: str
) -> None:
    """A NUL inside a key: the store keeps it apart from its neighbours and a single and a bulk
    read agree, or — a store declaring NUL in ``refused_in_keys`` (PostgreSQL's TEXT column) —
    every verb refuses it with InvalidArgument, never a silently empty read."""
    keys = [f"{key}-a\x00b", f"{key}-a", f"{key}-a\x00c", f"{key}-\x00"]
    if "\x00" in store.refused_in_keys:
        for verb in (lambda: state.save_state(STORE, [StateItem(keys[0], b"v")]),
                     lambda: state.get_state(STORE, keys[0]),
                     lambda: state.get_bulk_state(STORE, [keys[1], keys[0]]),
                     lambda: state.delete_state(STORE, StateItem(keys[0]))):
            with pytest.raises(InvalidArgument, match="can't hold a key containing"):
                await verb()
        return
    await state.save_state(STORE, [StateItem(k, k.encode()) for k in keys])
    for k in keys:
        assert await value_of(state, k) == k.encode()
    items = await state.get_bulk_state(STORE, [*reversed(keys), keys[0]])
    assert [(i.key, i.value) for i in items] == [(k, k.encode())
                                                 for k in [*reversed(keys), keys[0]]]
    assert all(i.etag for i in items) == store.has(Feature.ETAG)
    await state.delete_state(STORE, StateItem(keys[0]))
    assert await value_of(state, keys[0]) == b""
    assert [i.value for i in await state.get_bulk_state(STORE, keys)] == [
        b"", *(k.encode() for k in keys[1:])]
    await state.delete_bulk_state(STORE, [StateItem(k) for k in keys])


async def test_app_ids_are_isolated_by_key_prefix(store: StateStore, key: str) -> None:
    orders, billing = capability_over(store, "orders"), capability_over(store, "billing")
    await orders.save_state(STORE, [StateItem(key, b"orders")])
    await billing.save_state(STORE, [StateItem(key, b"billing")])
    assert await value_of(orders, key) == b"orders"
    assert await value_of(billing, key) == b"billing"


# ---- TTL ----------------------------------------------------------------------------------------


async def test_ttl_expiry(case: Case, state: StateCapability, key: str) -> None:
    short = StateItem(key, b"short", metadata={"ttlInSeconds": "1"})
    if not case.has("TTL"):
        with pytest.raises(Unsupported, match="ttlInSeconds"):
            await state.save_state(STORE, [short])
        return
    forever = StateItem(f"{key}-forever", b"forever", metadata={"ttlInSeconds": "-1"})
    await state.save_state(STORE, [short, forever])
    got = await state.get_state(STORE, key)
    assert got.value == b"short"
    assert TTL_EXPIRE_TIME in got.metadata
    deadline = time.monotonic() + 10
    while (await value_of(state, key)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    assert await value_of(state, key) == b""
    assert (await state.get_bulk_state(STORE, [key]))[0].value == b""
    assert await value_of(state, f"{key}-forever") == b"forever"
    # An expired key is absent for first-write too.
    await state.save_state(STORE, [StateItem(key, b"new", concurrency=Concurrency.FIRST_WRITE)])
    assert await value_of(state, key) == b"new"


@pytest.mark.parametrize("case", cases_with("TTL"), indirect=True)
async def test_ttl_removed_by_a_write_without_ttl(state: StateCapability, key: str) -> None:
    await state.save_state(STORE, [StateItem(key, b"v", metadata={"ttlInSeconds": "1"})])
    await state.save_state(STORE, [StateItem(key, b"kept")])
    await asyncio.sleep(1.5)
    assert await value_of(state, key) == b"kept"


# ---- transactions ------------------------------------------------------------------------------


async def test_transaction_applies_every_operation(
    case: Case, state: StateCapability, key: str
) -> None:
    ops = [StateOperation("upsert", StateItem(f"{key}-a", b"a")),
           StateOperation("upsert", StateItem(f"{key}-b", b"b"))]
    if not case.has("TRANSACTIONAL"):
        with pytest.raises(Unsupported, match="transaction"):
            await state.execute_state_transaction(STORE, ops)
        return
    await state.save_state(STORE, [StateItem(f"{key}-gone", b"x")])
    await state.execute_state_transaction(
        STORE, [*ops, StateOperation("delete", StateItem(f"{key}-gone"))])
    assert await value_of(state, f"{key}-a") == b"a"
    assert await value_of(state, f"{key}-b") == b"b"
    assert await value_of(state, f"{key}-gone") == b""


@pytest.mark.parametrize("case", cases_with("TRANSACTIONAL"), indirect=True)
async def test_failed_transaction_writes_nothing(state: StateCapability, key: str) -> None:
    """The failing operation is on a key that exists (not one deleted earlier in the
    transaction: redis writes a missing key whatever the etag, see test_etag_on_a_missing_key)."""
    await state.save_state(STORE, [StateItem(f"{key}-kept", b"original"),
                                   StateItem(f"{key}-also", b"also")])
    stale = await etag_of(state, f"{key}-kept")
    await state.save_state(STORE, [StateItem(f"{key}-kept", b"changed")])
    with pytest.raises(EtagMismatch):
        await state.execute_state_transaction(STORE, [
            StateOperation("upsert", StateItem(f"{key}-new", b"new")),
            StateOperation("delete", StateItem(f"{key}-also")),
            StateOperation("upsert", StateItem(f"{key}-kept", b"stale write", etag=stale)),
        ])
    assert await value_of(state, f"{key}-new") == b""
    assert await value_of(state, f"{key}-also") == b"also"
    assert await value_of(state, f"{key}-kept") == b"changed"


@pytest.mark.parametrize("case", cases_with("TRANSACTIONAL"), indirect=True)
async def test_transaction_sees_its_earlier_operations(
    case: Case, state: StateCapability, key: str
) -> None:
    """A save after a delete of the same key in one transaction finds the key missing."""
    await state.save_state(STORE, [StateItem(key, b"original")])
    stale = "1" if redis_etags(case) else await etag_of(state, key)
    await state.save_state(STORE, [StateItem(key, b"changed")])
    recreate = [StateOperation("delete", StateItem(key)),
                StateOperation("upsert", StateItem(key, b"recreated", etag=stale))]
    if MISSING_KEY_TAKES_ETAG in case.traits:
        await state.execute_state_transaction(STORE, recreate)
        assert await value_of(state, key) == b"recreated"
    else:
        with pytest.raises(EtagMismatch):
            await state.execute_state_transaction(STORE, recreate)
        assert await value_of(state, key) == b"changed"


@pytest.mark.parametrize("case", cases_with("TRANSACTIONAL"), indirect=True)
async def test_failed_bulk_save_writes_nothing(state: StateCapability, key: str) -> None:
    """Bulk saves are all-or-nothing on every store that has transactions."""
    await state.save_state(STORE, [StateItem(f"{key}-kept", b"first")])
    stale = await etag_of(state, f"{key}-kept")
    await state.save_state(STORE, [StateItem(f"{key}-kept", b"original")])
    with pytest.raises(EtagMismatch):
        await state.save_state(STORE, [StateItem(f"{key}-new", b"new"),
                                       StateItem(f"{key}-kept", b"x", etag=stale)])
    assert await value_of(state, f"{key}-new") == b""
    assert await value_of(state, f"{key}-kept") == b"original"


@pytest.mark.parametrize("case", cases_with("TRANSACTIONAL"), indirect=True)
async def test_bulk_compare_and_set_of_every_item(state: StateCapability, key: str) -> None:
    """A bulk save (and a bulk delete) with an etag on every item — the scheduler's claims:
    one stale etag among them writes nothing; all current, all are written."""
    keys = [f"{key}-{n}" for n in range(5)]
    await state.save_state(STORE, [StateItem(k, b'{"n":0}') for k in keys])
    etags = {k: await etag_of(state, k) for k in keys}
    await state.save_state(STORE, [StateItem(keys[2], b"changed")])
    with pytest.raises(EtagMismatch):
        await state.save_state(STORE, [StateItem(k, b"batch", etag=etags[k]) for k in keys])
    assert [await value_of(state, k) for k in keys] == [
        b'{"n":0}', b'{"n":0}', b"changed", b'{"n":0}', b'{"n":0}']
    etags[keys[2]] = await etag_of(state, keys[2])
    await state.save_state(STORE, [StateItem(k, b'{"n":1}', etag=etags[k]) for k in keys])
    assert [await value_of(state, k) for k in keys] == [b'{"n":1}'] * 5
    fresh = {k: await etag_of(state, k) for k in keys}
    with pytest.raises(EtagMismatch):
        await state.delete_bulk_state(STORE, [StateItem(k, etag=etags[k] if k == keys[4]
                                                        else fresh[k]) for k in keys])
    assert [await value_of(state, k) for k in keys] == [b'{"n":1}'] * 5
    await state.delete_bulk_state(STORE, [StateItem(k, etag=fresh[k]) for k in keys])
    assert [await value_of(state, k) for k in keys] == [b""] * 5


# ---- query ---------------------------------------------------------------------------------------

PEOPLE = {
    "ann": {"name": "Ann", "age": 34, "org": {"team": "ops"}, "tags": ["a"]},
    "bob": {"name": "Bob", "age": 27, "org": {"team": "dev"}},
    "cid": {"name": "Cid", "age": 41, "org": {"team": "dev"}, "active": True},
    "dee": {"name": "Dee", "age": "41", "org": {"team": "ops"}},
    "eve": {"name": "Eve", "age": 27.5, "org": {"team": "qa"}, "active": False},
    "fay": {"name": "Fay", "org": None},
}

QUERIES: dict[str, dict[str, Any]] = {
    "all": {},
    "eq-nested": {"filter": {"EQ": {"org.team": "dev"}}},
    "eq-number-is-type-exact": {"filter": {"EQ": {"age": 41}}},
    "eq-bool": {"filter": {"EQ": {"active": True}}},
    "in": {"filter": {"IN": {"org.team": ["ops", "qa"]}}},
    "range-numbers": {"filter": {"AND": [{"GTE": {"age": 27.5}}, {"LT": {"age": 41}}]}},
    "range-strings": {"filter": {"GT": {"name": "Bob"}}},
    "or": {"filter": {"OR": [{"EQ": {"name": "Ann"}}, {"LTE": {"age": 27}}]}},
    "sort-desc": {"sort": [{"key": "age", "order": "DESC"}]},
    "sort-two-keys": {"sort": [{"key": "org.team"}, {"key": "name", "order": "DESC"}]},
    "filter-sort-limit": {"filter": {"IN": {"org.team": ["dev", "ops"]}},
                          "sort": [{"key": "name"}], "page": {"limit": 2}},
}


@pytest.mark.parametrize("name", list(QUERIES))
async def test_query_matches_the_reference_semantics(
    case: Case, store: StateStore, key: str, name: str
) -> None:
    state = capability_over(store, key)  # an app id of its own: the query sees only its keys
    if not case.has("QUERY_API"):
        with pytest.raises(Unsupported, match="query"):
            await state.query_state(STORE, QUERIES[name])
        return
    values = {name: json.dumps(doc).encode() for name, doc in PEOPLE.items()}
    await state.save_state(STORE, [StateItem(k, v) for k, v in values.items()])
    await state.save_state(STORE, [StateItem("binary", b"\xff\x00 not json")])
    expected = sort_and_filter_sequence([QueryItem(k, v) for k, v in values.items()],
                                        parse_query(QUERIES[name]))
    result = await state.query_state(STORE, QUERIES[name])
    assert [i.key for i in result.items] == [i.key for i in expected.items]
    assert [i.value for i in result.items] == [values[i.key] for i in result.items]
    assert all(i.etag for i in result.items)
    assert bool(result.token) == bool(expected.token)


@pytest.mark.parametrize("case", cases_with("QUERY_API"), indirect=True)
async def test_query_pages_through_everything(store: StateStore, key: str) -> None:
    state = capability_over(store, key)
    await state.save_state(STORE, [StateItem(f"k{i:02}", json.dumps({"n": i}).encode())
                                   for i in range(7)])
    seen: list[str] = []
    token = ""
    for _ in range(10):
        page = {"sort": [{"key": "n", "order": "DESC"}], "page": {"limit": 3, "token": token}}
        result = await state.query_state(STORE, page)
        assert len(result.items) <= 3
        seen += [i.key for i in result.items]
        token = result.token
        if not token:
            break
    assert seen == [f"k{i:02}" for i in reversed(range(7))]


# ---- outage --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", load_cases("state", where=lambda c: bool(c.proxy)),
                         indirect=True)
async def test_outage_gives_unavailable_then_recovers(
    case: Case, tmp_path: Path, key: str
) -> None:
    with TcpProxy("127.0.0.1", case.backend_port) as proxy:
        async with build(case, tmp_path, **case.via_proxy(proxy.port)) as component:
            assert isinstance(component, StateStore)
            state = capability_over(component)
            await state.save_state(STORE, [StateItem(key, b"before")])
            proxy.cut()
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await state.get_state(STORE, key)
            with pytest.raises(Unavailable):
                await state.save_state(STORE, [StateItem(key, b"during")])
            with pytest.raises(Unavailable):
                await component.ping()
            assert time.monotonic() - started < 20, "calls must fail within their timeout"
            proxy.restore()
            await once_back(lambda: state.save_state(STORE, [StateItem(key, b"after")]))
            assert await value_of(state, key) == b"after"
