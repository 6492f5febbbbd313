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
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.state import EtagRules, StateCapability, StateItem, StateOperation
from pylotto.components.base import Component
from pylotto.components.state.base import TTL_EXPIRE_TIME, Concurrency, Feature, StateStore
from pylotto.components.state.query import QueryItem, parse_query, sort_and_filter_sequence
from pylotto.config.model import AppConfig
from pylotto.core.errors import (
    EtagInvalid,
    EtagMismatch,
    InvalidArgument,
    Unavailable,
    Unsupported,
)
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
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=load_cases("state"))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    return chosen


def cases_with(feature: str) -> list[object]:
    return load_cases("state", where=lambda c: c.has(feature))


@pytest.fixture
async def store(case: Case, tmp_path: Path) -> AsyncIterator[StateStore]:
    """The case's store; keys are scoped by app id (Dapr's default ``keyPrefix``)."""
    async with build(case, tmp_path, keyPrefix="appid") as component:
        assert isinstance(component, StateStore)
        yield component


def capability_over(store: StateStore, app_id: str = "conformance") -> StateCapability:
    return StateCapability(ComponentSet("state store", {STORE: store}),
                           RuntimeContext(AppConfig(app_id=app_id), Path("/nonexistent")))


@pytest.fixture
def state(store: StateStore) -> StateCapability:
    return capability_over(store)


@pytest.fixture
def key() -> str:
    """A key no other test or run uses (the backends are shared)."""
    return f"{RUN_PREFIX}-{uuid.uuid4().hex[:12]}"


async def value_of(state: StateCapability, key: str) -> bytes:
    return (await state.get_state(STORE, key)).value


async def etag_of(state: StateCapability, key: str) -> str:
    etag = (await state.get_state(STORE, key)).etag
    assert etag, f"no etag for {key}"
    return etag


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


# ---- etags and first-write --------------------------------------------------------------------


REDIS_ETAGS = "redis-etags"
"""Case trait: etags as components-contrib's ``state/redis/redis.go`` (v1.5.2 lines 27-28
setQuery/delQuery, 363-373 parseETag; the same at v1.18.4 lines 39-60, 535-545). Without it a
store has the strict reading of every other contrib store (v1.18.4 ``state/in-memory/
in_memory.go`` 154-179 doValidateEtag, ``state/etcd/etcd.go`` 279-306, ``state/sqlite/
sqlite_dbaccess.go`` 348-413, ``state/mysql/mysql.go`` 623-666, ``common/component/postgresql/
v1/postgresql.go`` 241-272, 445-463): a given etag must match, a missing key matches none."""


def redis_etags(case: Case) -> bool:
    return REDIS_ETAGS in case.traits


NUMERIC_ETAGS = "numeric-etags"
"""Case trait: a non-number etag is EtagInvalid (contrib's postgresql v1 ``strconv.ParseUint``,
common/component/postgresql/v1/postgresql.go 241-250 at main; redis ``parseETag``). Without
it, contrib compares the etag as text (in_memory.go doValidateEtag, sqlite_dbaccess.go 390-414,
mysql.go 623-666, etcd.go 279-306 at main): any other text is a mismatch."""

MISSING_KEY_TAKES_ETAG = "missing-key-takes-etag"
"""Case trait: a save to a missing key creates it whatever its etag, a delete of one succeeds
(redis.go setQuery ``not var1``; zookeeper zk.go Set: ``ErrNoNode`` → Create, Delete:
``ErrNoNode`` → nil, at v1.5.2 and main)."""


async def test_etag_lifecycle(case: Case, state: StateCapability, key: str) -> None:
    if not case.has("ETAG"):
        await state.save_state(STORE, [StateItem(key, b"v")])
        with pytest.raises(Unsupported, match="etag"):
            await state.save_state(STORE, [StateItem(key, b"v2", etag="1")])
        return
    await state.save_state(STORE, [StateItem(key, b"v1")])
    first = await etag_of(state, key)
    await state.save_state(STORE, [StateItem(key, b"v2", etag=first)])
    second = await etag_of(state, key)
    assert second != first
    with pytest.raises(EtagMismatch):
        await state.save_state(STORE, [StateItem(key, b"stale", etag=first)])
    with pytest.raises(EtagMismatch):
        await state.delete_state(STORE, StateItem(key, etag=first))
    assert await value_of(state, key) == b"v2"
    with pytest.raises(EtagInvalid if NUMERIC_ETAGS in case.traits else EtagMismatch):
        await state.save_state(STORE, [StateItem(key, b"v", etag="not-an-etag")])
    if NUMERIC_ETAGS not in case.traits:
        with pytest.raises(EtagMismatch):
            await state.delete_state(STORE, StateItem(key, etag="not-an-etag"))
    assert await value_of(state, key) == b"v2"
    await state.delete_state(STORE, StateItem(key, etag=second))
    assert await value_of(state, key) == b""


@pytest.mark.parametrize("case", cases_with("ETAG"), indirect=True)
async def test_etag_on_a_missing_key(case: Case, state: StateCapability, key: str) -> None:
    """Strict stores: no etag matches a missing key (in_memory.go 164-168 at v1.18.4).
    Redis writes a missing key whatever the etag and deletes it as done (setQuery / delQuery
    ``not var1``, redis.go 27-28 at v1.5.2, 45 and 56 at v1.18.4)."""
    await state.save_state(STORE, [StateItem(f"{key}-other", b"x")])
    foreign = await etag_of(state, f"{key}-other")
    if MISSING_KEY_TAKES_ETAG in case.traits:
        await state.delete_state(STORE, StateItem(key, etag=foreign))
        await state.save_state(STORE, [StateItem(key, b"v", etag=foreign)])
        assert await value_of(state, key) == b"v"
        return
    with pytest.raises(EtagMismatch):
        await state.save_state(STORE, [StateItem(key, b"v", etag=foreign)])
    with pytest.raises(EtagMismatch):
        await state.delete_state(STORE, StateItem(key, etag=foreign))
    assert await value_of(state, key) == b""


@pytest.mark.parametrize("case", cases_with("ETAG"), indirect=True)
async def test_etag_zero(case: Case, state: StateCapability, key: str) -> None:
    """``Etag{value: "0"}`` is what Layotto's SDKs send when the caller gives none (js-sdk
    1.18.0 src/client/State.ts 126-128, 199-201). Redis reads it as "no etag" (``ARGV[1] ==
    "0"``, redis.go 27-28 at v1.5.2): save and delete are unconditional, bulk and transactions
    too. Strict stores compare it like any etag, and no version is "0"."""
    ops = [StateOperation("upsert", StateItem(f"{key}-t", b"t", etag="0")),
           StateOperation("delete", StateItem(f"{key}-gone", etag="0"))]
    if redis_etags(case):
        await state.save_state(STORE, [StateItem(key, b"a", etag="0")])
        await state.save_state(STORE, [StateItem(key, b"b", etag="0"),
                                       StateItem(f"{key}-2", b"c", etag="0")])
        assert await value_of(state, key) == b"b"
        await state.save_state(STORE, [StateItem(f"{key}-gone", b"x")])
        await state.execute_state_transaction(STORE, ops)
        assert await value_of(state, f"{key}-t") == b"t"
        assert await value_of(state, f"{key}-gone") == b""
        await state.delete_state(STORE, StateItem(key, etag="0"))
        await state.delete_bulk_state(STORE, [StateItem(f"{key}-2", etag="0")])
        assert await value_of(state, key) == b"" and await value_of(state, f"{key}-2") == b""
        return
    await state.save_state(STORE, [StateItem(key, b"a")])
    with pytest.raises(EtagMismatch):
        await state.save_state(STORE, [StateItem(key, b"b", etag="0")])
    with pytest.raises(EtagMismatch):
        await state.delete_state(STORE, StateItem(key, etag="0"))
    assert await value_of(state, key) == b"a"


@pytest.mark.parametrize("case", cases_with("ETAG"), indirect=True)
async def test_layotto_rules_zero_and_last_write_mean_no_etag(
    case: Case, state: StateCapability, key: str
) -> None:
    """The Layotto dialect (EtagRules.LAYOTTO, what the Layotto facade uses) on every store:
    ``"0"`` — the etag Layotto's SDKs send when the caller gives none — is no etag in saves,
    deletes, bulk calls and transactions, and a save under last-write drops its etag (issue 15
    items 6 and 8). A real etag is still checked, and a delete keeps its etag under
    last-write."""
    layotto = EtagRules.LAYOTTO
    await state.save_state(STORE, [StateItem(key, b"a", etag="0")], layotto)
    await state.save_state(STORE, [StateItem(key, b"b", etag="0"),
                                   StateItem(f"{key}-2", b"c", etag="0")], layotto)
    assert await value_of(state, key) == b"b"
    stale = await etag_of(state, key)
    await state.save_state(STORE, [StateItem(key, b"c")], layotto)
    with pytest.raises(EtagMismatch):
        await state.save_state(STORE, [StateItem(key, b"stale", etag=stale)], layotto)
    await state.save_state(STORE, [StateItem(key, b"last", etag=stale,
                                             concurrency=Concurrency.LAST_WRITE)], layotto)
    assert await value_of(state, key) == b"last"
    stale_delete = StateItem(key, etag=stale, concurrency=Concurrency.LAST_WRITE)
    if "last-write-ignores-etag" in case.traits:  # the store's own rule (zookeeper)
        await state.delete_state(STORE, stale_delete, layotto)
        await state.save_state(STORE, [StateItem(key, b"again")], layotto)
    else:
        with pytest.raises(EtagMismatch):
            await state.delete_state(STORE, stale_delete, layotto)
    if case.has("TRANSACTIONAL"):
        await state.execute_state_transaction(STORE, [
            StateOperation("upsert", StateItem(f"{key}-t", b"t", etag="0")),
            StateOperation("delete", StateItem(f"{key}-2", etag="0"))], rules=layotto)
        assert await value_of(state, f"{key}-t") == b"t"
        assert await value_of(state, f"{key}-2") == b""
    else:
        await state.save_state(STORE, [StateItem(f"{key}-t", b"t", etag="0")], layotto)
    await state.delete_state(STORE, StateItem(key, etag="0"), layotto)
    await state.delete_bulk_state(STORE, [StateItem(f"{key}-t", etag="0"),
                                          StateItem(f"{key}-2", etag="0")], layotto)
    assert await value_of(state, key) == b"" and await value_of(state, f"{key}-t") == b""
    first = StateItem(f"{key}-f", b"f", etag="0", concurrency=Concurrency.FIRST_WRITE)
    await state.save_state(STORE, [first], layotto)
    with pytest.raises(EtagMismatch):  # first-write still creates only
        await state.save_state(STORE, [first], layotto)


@pytest.mark.parametrize("case", load_cases("state", where=lambda c: not c.has("ETAG")),
                         indirect=True)
async def test_layotto_zero_etag_on_a_store_without_etags(
    state: StateCapability, key: str
) -> None:
    """The Layotto SDKs' default ``"0"`` is no etag, so their default calls work on a store
    without etags (memcached); any other etag is still refused there, as through Dapr."""
    layotto = EtagRules.LAYOTTO
    await state.save_state(STORE, [StateItem(key, b"v", etag="0")], layotto)
    assert await value_of(state, key) == b"v"
    await state.delete_state(STORE, StateItem(key, etag="0"), layotto)
    assert await value_of(state, key) == b""
    with pytest.raises(Unsupported, match="etag"):
        await state.save_state(STORE, [StateItem(key, b"v", etag="0")])
    with pytest.raises(Unsupported, match="etag"):
        await state.save_state(STORE, [StateItem(key, b"v", etag="5")], layotto)


@pytest.mark.parametrize("case", cases_with("ETAG"), indirect=True)
async def test_etag_numbering(case: Case, state: StateCapability, key: str) -> None:
    """Redis versions each key from 1 (``HINCRBY version 1``, redis.go 27 at v1.5.2, 50 at
    v1.18.4), so a key deleted and written again starts at 1 again. The other pylotto stores
    never reuse an etag (a sequence, a counter or etcd's revision)."""
    await state.save_state(STORE, [StateItem(key, b"v1")])
    first = await etag_of(state, key)
    await state.save_state(STORE, [StateItem(key, b"v2")])
    second = await etag_of(state, key)
    await state.delete_state(STORE, StateItem(key))
    await state.save_state(STORE, [StateItem(key, b"again")])
    again = await etag_of(state, key)
    if redis_etags(case):
        assert (first, second, again) == ("1", "2", "1")
    else:
        assert second != first and again not in (first, second)


@pytest.mark.parametrize("case", cases_with("ETAG"), indirect=True)
async def test_last_write_with_an_etag(case: Case, state: StateCapability, key: str) -> None:
    """Redis ignores a save's etag under last-write (parseETag: ``Concurrency == LastWrite``
    → 0, redis.go 364 at v1.5.2, 536 at v1.18.4); its delete still checks one (delQuery takes
    the etag whatever the concurrency). The strict stores check it (none of them looks at
    last-write, e.g. postgresql.go 241-250 at v1.18.4)."""
    await state.save_state(STORE, [StateItem(key, b"v1")])
    stale = await etag_of(state, key)
    await state.save_state(STORE, [StateItem(key, b"v2")])
    last = Concurrency.LAST_WRITE
    if "last-write-ignores-etag" in case.traits:  # zookeeper: zk.go newSetDataRequest and
        # newDeleteRequest take anyVersion under last-write (v1.5.2 and main)
        await state.save_state(STORE, [StateItem(key, b"v3", etag=stale, concurrency=last)])
        assert await value_of(state, key) == b"v3"
        await state.delete_state(STORE, StateItem(key, etag=stale, concurrency=last))
        assert await value_of(state, key) == b""
        return
    if redis_etags(case):
        await state.save_state(STORE, [StateItem(key, b"v3", etag=stale, concurrency=last)])
        await state.save_state(STORE, [StateItem(f"{key}-new", b"n", etag="7",
                                                 concurrency=last)])
        assert await value_of(state, key) == b"v3"
    else:
        with pytest.raises(EtagMismatch):
            await state.save_state(STORE, [StateItem(key, b"v3", etag=stale, concurrency=last)])
        assert await value_of(state, key) == b"v2"
    with pytest.raises(EtagMismatch):
        await state.delete_state(STORE, StateItem(key, etag=stale, concurrency=last))


async def test_first_write(case: Case, state: StateCapability, key: str) -> None:
    """First-write without etag creates a key only (in_memory.go 157-163 at v1.18.4; Dapr's
    conformance ``first-write without etag``, tests/conformance/state/state.go 1164-1235).
    Redis at v1.5.2 and v1.18.4 overwrites a key not itself saved with first-write; pylotto
    refuses that too (the reference loses the existing value)."""
    first = StateItem(key, b"first", concurrency=Concurrency.FIRST_WRITE)
    if not case.has("ETAG"):
        with pytest.raises(Unsupported, match="first-write"):
            await state.save_state(STORE, [first])
        return
    await state.save_state(STORE, [first])
    with pytest.raises(EtagMismatch):
        await state.save_state(STORE, [StateItem(key, b"second",
                                                 concurrency=Concurrency.FIRST_WRITE)])
    assert await value_of(state, key) == b"first"
    etag = await etag_of(state, key)
    await state.save_state(STORE, [StateItem(key, b"third", etag=etag,
                                             concurrency=Concurrency.FIRST_WRITE)])
    assert await value_of(state, key) == b"third"
    await state.save_state(STORE, [StateItem(f"{key}-plain", b"plain")])
    with pytest.raises(EtagMismatch):
        await state.save_state(STORE, [StateItem(f"{key}-plain", b"over",
                                                 concurrency=Concurrency.FIRST_WRITE)])
    assert await value_of(state, f"{key}-plain") == b"plain"


@pytest.mark.parametrize("case", cases_with("ETAG"), indirect=True)
async def test_a_first_write_key_needs_an_etag(
    case: Case, state: StateCapability, key: str
) -> None:
    """Redis marks a key saved with first-write (``HSET first-write 0``) and then refuses a
    save without etag ("0", last-write included: ``not var2 and ARGV[1] == "0"``, redis.go 27
    at v1.5.2, 44-48 at v1.18.4) until the key is deleted; its Multi passes no first-write
    argument (redis.go 319), so a transaction never marks. Strict stores keep no mark."""
    await state.save_state(STORE, [StateItem(key, b"first", concurrency=Concurrency.FIRST_WRITE)])
    plain = [StateItem(key, b"plain"), StateItem(key, b"zero", etag="0"),
             StateItem(key, b"last", concurrency=Concurrency.LAST_WRITE)]
    if not redis_etags(case):
        await state.save_state(STORE, plain[:1])
        assert await value_of(state, key) == b"plain"
        return
    for item in plain:
        with pytest.raises(EtagMismatch, match="first-write"):
            await state.save_state(STORE, [item])
    await state.save_state(STORE, [StateItem(key, b"etag", etag=await etag_of(state, key))])
    with pytest.raises(EtagMismatch):  # still marked
        await state.save_state(STORE, plain[:1])
    await state.delete_state(STORE, StateItem(key))
    await state.save_state(STORE, plain[:1])  # a new key, unmarked
    await state.execute_state_transaction(STORE, [StateOperation("upsert", StateItem(
        f"{key}-tx", b"tx", concurrency=Concurrency.FIRST_WRITE))])
    await state.save_state(STORE, [StateItem(f"{key}-tx", b"after")])
    assert await value_of(state, f"{key}-tx") == b"after"


@pytest.mark.parametrize("case", cases_with("ETAG"), indirect=True)
async def test_concurrent_writers_with_one_etag_exactly_one_wins(
    state: StateCapability, key: str
) -> None:
    await state.save_state(STORE, [StateItem(key, b"start")])
    etag = await etag_of(state, key)

    async def write(n: int) -> bool:
        try:
            await state.save_state(STORE, [StateItem(key, f"w{n}".encode(), etag=etag)])
        except EtagMismatch:
            return False
        return True

    results = await asyncio.gather(*(write(n) for n in range(20)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert await value_of(state, key) == f"w{winner}".encode()


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
