"""The state conformance suite, etags and first-write: every test runs against every case of
cases.yaml (fixtures: conftest.py), through the capability layer."""

from __future__ import annotations

import asyncio

import pytest

from pylotto.capabilities.state import EtagRules, StateCapability, StateItem, StateOperation
from pylotto.components.state.base import Concurrency
from pylotto.core.errors import EtagInvalid, EtagMismatch, Unsupported
from tests.conformance.cases import Case, load_cases
from tests.conformance.conftest import STORE
from tests.conformance.state.support import (
    MISSING_KEY_TAKES_ETAG,
    NUMERIC_ETAGS,
    cases_with,
    etag_of,
    redis_etags,
    value_of,
)

pytestmark = pytest.mark.timeout(120)


# ---- etags and first-write --------------------------------------------------------------------


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
