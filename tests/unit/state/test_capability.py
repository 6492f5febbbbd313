"""The state capability against every embedded store (parametrised in conftest)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pylotto.capabilities.state import (
    StateCapability,
    StateItem,
    StateOperation,
    concurrency_from_wire,
    consistency_from_wire,
)
from pylotto.components.state.base import (
    TTL_EXPIRE_TIME,
    Concurrency,
    Consistency,
    StateStore,
)
from pylotto.components.state.memory import MemoryStateStore
from pylotto.core.errors import (
    ComponentNotFound,
    ConfigError,
    EtagMismatch,
    InvalidArgument,
    NotConfigured,
    Unsupported,
)
from tests.unit.state.support import MakeStore, capability

S = "store"


async def value_of(state: StateCapability, key: str) -> bytes:
    return (await state.get_state(S, key)).value


async def etag_of(state: StateCapability, key: str) -> str:
    etag = (await state.get_state(S, key)).etag
    assert etag
    return etag


# ---- basics -------------------------------------------------------------------------------------


async def test_missing_key_gives_empty_value_and_no_etag(state: StateCapability) -> None:
    got = await state.get_state(S, "absent")
    assert (got.value, got.etag, got.metadata) == (b"", None, {})


@pytest.mark.parametrize("size", [1, 1024, 1024 * 1024])
async def test_values_are_bytes_returned_unchanged(state: StateCapability, size: int) -> None:
    value = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert len(value) == size
    await state.save_state(S, [StateItem("k", value)])
    got = await state.get_state(S, "k", Consistency.STRONG, {"any": "thing"})
    assert got.value == value
    assert got.etag


async def test_save_several_items_and_overwrite(state: StateCapability) -> None:
    await state.save_state(S, [StateItem("a", b"1"), StateItem("b", b"2")])
    await state.save_state(S, [StateItem("a", b"3")])
    assert (await value_of(state, "a"), await value_of(state, "b")) == (b"3", b"2")


async def test_save_with_no_items_is_a_no_op(state: StateCapability) -> None:
    await state.save_state(S, [])
    await state.delete_bulk_state(S, [])
    await state.execute_state_transaction(S, [])


async def test_empty_key_is_refused(state: StateCapability) -> None:
    with pytest.raises(InvalidArgument, match="key is empty"):
        await state.save_state(S, [StateItem("", b"x")])
    with pytest.raises(InvalidArgument, match="key is empty"):
        await state.get_state(S, "")


# ---- store lookup -------------------------------------------------------------------------------


async def test_store_lookup_errors(state: StateCapability) -> None:
    with pytest.raises(InvalidArgument, match="state store name is empty"):
        await state.get_state("", "k")
    with pytest.raises(ComponentNotFound, match="state store nope is not found"):
        await state.save_state("nope", [StateItem("k", b"v")])
    with pytest.raises(ComponentNotFound, match="state store nope is not found"):
        await state.execute_state_transaction("nope", [])


async def test_no_store_configured() -> None:
    with pytest.raises(NotConfigured, match="state store is not configured"):
        await capability().get_bulk_state("any", ["k"])


# ---- etags and concurrency ----------------------------------------------------------------------


async def test_etag_lifecycle(state: StateCapability) -> None:
    await state.save_state(S, [StateItem("k", b"v1")])
    first = await etag_of(state, "k")
    await state.save_state(S, [StateItem("k", b"v2", etag=first)])
    second = await etag_of(state, "k")
    assert second != first
    with pytest.raises(EtagMismatch, match="failed saving state in state store store: "):
        await state.save_state(S, [StateItem("k", b"stale", etag=first)])
    with pytest.raises(EtagMismatch, match="failed deleting state with key k: "):
        await state.delete_state(S, StateItem("k", etag=first))
    assert await value_of(state, "k") == b"v2"
    await state.delete_state(S, StateItem("k", etag=second))
    assert (await state.get_state(S, "k")).etag is None


async def test_etags_never_repeat_for_a_key(state: StateCapability) -> None:
    seen = set()
    for round_ in range(3):
        await state.save_state(S, [StateItem("k", b"x")])
        seen.add(await etag_of(state, "k"))
        await state.save_state(S, [StateItem("k", b"y")])
        seen.add(await etag_of(state, "k"))
        await state.delete_state(S, StateItem("k"))
        assert len(seen) == 2 * (round_ + 1)


async def test_etag_given_for_a_missing_key_is_a_mismatch(state: StateCapability) -> None:
    with pytest.raises(EtagMismatch):
        await state.save_state(S, [StateItem("new", b"v", etag="1")])
    with pytest.raises(EtagMismatch):
        await state.delete_state(S, StateItem("new", etag="1"))
    assert (await state.get_state(S, "new")).etag is None


@pytest.mark.parametrize("bad", ["not-a-number", "-1", "1.0", " 1"])
async def test_an_etag_that_is_no_version_is_a_mismatch(state: StateCapability,
                                                        bad: str) -> None:
    """Dapr's in-memory and SQLite stores compare an etag as text: any other text is an etag
    mismatch (ABORTED), not an invalid argument."""
    await state.save_state(S, [StateItem("k", b"v")])
    with pytest.raises(EtagMismatch, match="etag mismatch"):
        await state.save_state(S, [StateItem("k", b"w", etag=bad)])
    with pytest.raises(EtagMismatch):
        await state.delete_state(S, StateItem("k", etag=bad))
    with pytest.raises(EtagMismatch):
        await state.save_state(S, [StateItem("absent", b"w", etag=bad)])
    assert await value_of(state, "k") == b"v"


async def test_empty_etag_means_no_etag(state: StateCapability) -> None:
    await state.save_state(S, [StateItem("k", b"v1", etag="")])
    await state.save_state(S, [StateItem("k", b"v2", etag="")])
    assert await value_of(state, "k") == b"v2"
    await state.delete_state(S, StateItem("k", etag=""))
    assert await value_of(state, "k") == b""


async def test_delete_without_etag_of_missing_key_succeeds(state: StateCapability) -> None:
    await state.delete_state(S, StateItem("never-written"))


async def test_first_write(state: StateCapability) -> None:
    first = Concurrency.FIRST_WRITE
    await state.save_state(S, [StateItem("k", b"v1", concurrency=first)])
    with pytest.raises(EtagMismatch, match="first-write"):
        await state.save_state(S, [StateItem("k", b"v2", concurrency=first)])
    assert await value_of(state, "k") == b"v1"
    await state.save_state(S, [StateItem("k", b"v3", etag=await etag_of(state, "k"),
                                         concurrency=first)])
    assert await value_of(state, "k") == b"v3"
    await state.save_state(S, [StateItem("k", b"v4", concurrency=Concurrency.LAST_WRITE)])
    assert await value_of(state, "k") == b"v4"


async def test_last_write_with_a_stale_etag_still_checks_the_etag(state: StateCapability) -> None:
    await state.save_state(S, [StateItem("k", b"v1")])
    stale = await etag_of(state, "k")
    await state.save_state(S, [StateItem("k", b"v2")])
    with pytest.raises(EtagMismatch):
        await state.save_state(S, [StateItem("k", b"v3", etag=stale,
                                             concurrency=Concurrency.LAST_WRITE)])


async def test_one_of_many_concurrent_writers_with_the_same_etag_wins(
    state: StateCapability,
) -> None:
    await state.save_state(S, [StateItem("k", b"start")])
    etag = await etag_of(state, "k")
    writers = [state.save_state(S, [StateItem("k", f"w{i}".encode(), etag=etag)])
               for i in range(20)]
    results = await asyncio.gather(*writers, return_exceptions=True)
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1
    assert all(isinstance(r, EtagMismatch) for r in results if r is not None)
    assert await value_of(state, "k") == f"w{winners[0]}".encode()


async def test_concurrent_first_writers_one_wins(state: StateCapability) -> None:
    writers = [state.save_state(S, [StateItem("k", b"%d" % i, concurrency=Concurrency.FIRST_WRITE)])
               for i in range(10)]
    results = await asyncio.gather(*writers, return_exceptions=True)
    assert sum(r is None for r in results) == 1


async def test_save_state_items_are_all_or_nothing(state: StateCapability) -> None:
    await state.save_state(S, [StateItem("old", b"v")])
    with pytest.raises(EtagMismatch):
        await state.save_state(S, [StateItem("new", b"n"), StateItem("old", b"x", etag="999999")])
    assert await value_of(state, "new") == b""
    assert await value_of(state, "old") == b"v"


def test_wire_enums() -> None:
    assert [concurrency_from_wire(i) for i in (0, 1, 2)] == [
        Concurrency.UNSPECIFIED, Concurrency.FIRST_WRITE, Concurrency.LAST_WRITE]
    assert [consistency_from_wire(i) for i in (0, 1, 2)] == [
        Consistency.UNSPECIFIED, Consistency.EVENTUAL, Consistency.STRONG]
    with pytest.raises(InvalidArgument, match="concurrency 7"):
        concurrency_from_wire(7)
    with pytest.raises(InvalidArgument, match="consistency 9"):
        consistency_from_wire(9)


# ---- key prefixes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "stored"),
    [(None, "k"), ("none", "k"), ("appid", "myapp||k"), ("AppID", "myapp||k"),
     ("name", "pfx-store||k"), ("custom-prefix", "custom-prefix||k")],
)
async def test_key_prefix_strategies(make_store: MakeStore, strategy: str | None,
                                     stored: str) -> None:
    metadata = {} if strategy is None else {"keyPrefix": strategy}
    store = await make_store("pfx-store", **metadata)
    state = capability(store, app_id="myapp")
    await state.save_state("pfx-store", [StateItem("k", b"v")])
    raw = await store.get(stored, Consistency.UNSPECIFIED, {})
    assert raw is not None
    assert raw.value == b"v"
    assert (await state.get_state("pfx-store", "k")).value == b"v"
    [item] = await state.get_bulk_state("pfx-store", ["k"])
    assert (item.key, item.value) == ("k", b"v")
    await state.delete_state("pfx-store", StateItem("k"))
    assert await store.get(stored, Consistency.UNSPECIFIED, {}) is None


async def test_appid_prefix_isolates_apps_sharing_a_store(make_store: MakeStore) -> None:
    store = await make_store(S, keyPrefix="appid")
    app1, app2 = capability(store, app_id="app1"), capability(store, app_id="app2")
    await app1.save_state(S, [StateItem("k", b"one")])
    await app2.save_state(S, [StateItem("k", b"two")])
    assert (await app1.get_state(S, "k")).value == b"one"
    assert (await app2.get_state(S, "k")).value == b"two"
    await app1.delete_state(S, StateItem("k"))
    assert (await app2.get_state(S, "k")).value == b"two"


async def test_appid_prefix_without_app_id_keeps_the_plain_key(make_store: MakeStore) -> None:
    store = await make_store(S, keyPrefix="appid")
    await capability(store, app_id="").save_state(S, [StateItem("k", b"v")])
    assert await store.get("k", Consistency.UNSPECIFIED, {}) is not None


async def test_separator_in_key_is_refused_everywhere(state: StateCapability) -> None:
    bad = "a||b"
    calls = [
        state.get_state(S, bad),
        state.get_bulk_state(S, ["fine", bad]),
        state.save_state(S, [StateItem("fine", b"v"), StateItem(bad, b"v")]),
        state.delete_state(S, StateItem(bad)),
        state.delete_bulk_state(S, [StateItem(bad)]),
        state.execute_state_transaction(S, [StateOperation("upsert", StateItem("fine", b"v")),
                                            StateOperation("upsert", StateItem(bad, b"v"))]),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument,
                           match=r"input key/keyPrefix 'a\|\|b' can't contain '\|\|'"):
            await call
    assert await value_of(state, "fine") == b""


async def test_custom_prefix_with_separator_is_a_config_error(make_store: MakeStore) -> None:
    with pytest.raises(ConfigError, match="keyPrefix"):
        await make_store(S, keyPrefix="a||b")


# ---- TTL ----------------------------------------------------------------------------------------


async def test_ttl_per_item_and_component_default(make_store: MakeStore) -> None:
    plain = capability(await make_store(S))
    short = await make_store("short", ttlInSeconds="1")
    with_default = capability(short)
    await plain.save_state(S, [
        StateItem("expires", b"1", metadata={"ttlInSeconds": "1"}),
        StateItem("stays", b"2"),
    ])
    await with_default.save_state("short", [
        StateItem("default", b"3"),
        StateItem("never", b"4", metadata={"ttlInSeconds": "-1"}),
        StateItem("longer", b"5", metadata={"ttlInSeconds": "100"}),
    ])
    got = await plain.get_state(S, "expires")
    assert got.value == b"1"
    assert got.metadata[TTL_EXPIRE_TIME].endswith("Z")
    assert (await plain.get_state(S, "stays")).metadata == {}
    await asyncio.sleep(1.5)
    assert (await plain.get_state(S, "expires")).value == b""
    assert (await plain.get_state(S, "stays")).value == b"2"
    items = await with_default.get_bulk_state("short", ["default", "never", "longer"])
    assert [(i.key, i.value) for i in items] == [("default", b""), ("never", b"4"),
                                                 ("longer", b"5")]
    # an expired key counts as absent for etags and first-write
    with pytest.raises(EtagMismatch):
        await plain.delete_state(S, StateItem("expires", etag="1"))
    await plain.save_state(S, [StateItem("expires", b"again",
                                         concurrency=Concurrency.FIRST_WRITE)])
    assert (await plain.get_state(S, "expires")).value == b"again"


@pytest.mark.parametrize("bad", ["soon", "1.5", ""])
async def test_bad_ttl_is_invalid(state: StateCapability, bad: str) -> None:
    with pytest.raises(InvalidArgument, match="ttlInSeconds"):
        await state.save_state(S, [StateItem("k", b"v", metadata={"ttlInSeconds": bad})])


# ---- bulk ---------------------------------------------------------------------------------------


async def test_bulk_get(make_store: MakeStore) -> None:
    state = capability(await make_store(S, keyPrefix="name"))
    assert await state.get_bulk_state(S, []) == []
    await state.save_state(S, [StateItem("a", b"1"), StateItem("c", b"3")])
    items = await state.get_bulk_state(S, ["a", "b", "c", "a"])
    assert [(i.key, i.value, i.error) for i in items] == [
        ("a", b"1", ""), ("b", b"", ""), ("c", b"3", ""), ("a", b"1", "")]
    assert items[0].etag == (await state.get_state(S, "a")).etag
    assert items[1].etag is None


async def test_bulk_delete(state: StateCapability) -> None:
    await state.save_state(S, [StateItem("a", b"1"), StateItem("b", b"2"), StateItem("c", b"3")])
    etag_b = await etag_of(state, "b")
    with pytest.raises(EtagMismatch, match="failed deleting state in state store store"):
        await state.delete_bulk_state(S, [StateItem("a"), StateItem("b", etag="999999")])
    assert await value_of(state, "a") == b"1"
    await state.delete_bulk_state(S, [StateItem("a"), StateItem("b", etag=etag_b),
                                      StateItem("missing")])
    items = await state.get_bulk_state(S, ["a", "b", "c"])
    assert [i.value for i in items] == [b"", b"", b"3"]


# ---- transactions -------------------------------------------------------------------------------


async def test_transaction_applies_upserts_and_deletes(state: StateCapability) -> None:
    await state.save_state(S, [StateItem("gone", b"x"), StateItem("kept", b"y")])
    etag = await etag_of(state, "kept")
    await state.execute_state_transaction(S, [
        StateOperation("upsert", StateItem("new", b"n", metadata={"ttlInSeconds": "100"})),
        StateOperation("delete", StateItem("gone")),
        StateOperation("upsert", StateItem("kept", b"z", etag=etag)),
        StateOperation("upsert", None),
    ], {"txn": "meta"})
    items = await state.get_bulk_state(S, ["new", "gone", "kept"])
    assert [i.value for i in items] == [b"n", b"", b"z"]
    assert TTL_EXPIRE_TIME in items[0].metadata


async def test_transaction_sees_its_own_earlier_operations(state: StateCapability) -> None:
    await state.execute_state_transaction(S, [
        StateOperation("upsert", StateItem("k", b"1")),
        StateOperation("delete", StateItem("k")),
        StateOperation("upsert", StateItem("j", b"1")),
        StateOperation("upsert", StateItem("j", b"2")),
    ])
    assert (await value_of(state, "k"), await value_of(state, "j")) == (b"", b"2")


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        (StateOperation("upsert", StateItem("existing", b"x", etag="999999")), EtagMismatch),
        (StateOperation("delete", StateItem("existing", etag="999999")), EtagMismatch),
        (StateOperation("delete", StateItem("absent", etag="1")), EtagMismatch),
        (StateOperation("upsert", StateItem("existing", b"x", etag="bad")), EtagMismatch),
        (StateOperation("upsert", StateItem("existing", b"x",
                                            concurrency=Concurrency.FIRST_WRITE)), EtagMismatch),
    ],
)
async def test_transaction_is_all_or_nothing(
    state: StateCapability, failing: StateOperation, error: type[Exception]
) -> None:
    await state.save_state(S, [StateItem("existing", b"old"), StateItem("doomed", b"d")])
    before = await etag_of(state, "existing")
    with pytest.raises(error, match="error while executing state transaction"):
        await state.execute_state_transaction(S, [
            StateOperation("upsert", StateItem("created", b"c")),
            StateOperation("delete", StateItem("doomed")),
            StateOperation("upsert", StateItem("existing", b"changed")),
            failing,
        ])
    items = await state.get_bulk_state(S, ["created", "doomed", "existing"])
    assert [i.value for i in items] == [b"", b"d", b"old"]
    assert items[2].etag == before


async def test_transaction_unknown_operation_type(state: StateCapability) -> None:
    with pytest.raises(Unsupported, match="operation type merge not supported"):
        await state.execute_state_transaction(S, [
            StateOperation("upsert", StateItem("k", b"v")),
            StateOperation("merge", StateItem("k", b"v")),
        ])
    with pytest.raises(Unsupported, match="operation type Upsert not supported"):
        await state.execute_state_transaction(S, [StateOperation("Upsert", StateItem("k"))])
    assert await value_of(state, "k") == b""


async def test_store_generated_etags_have_the_reference_format(store: StateStore) -> None:
    """in-memory: a UUID per write (contrib's in_memory.go); sqlite: a decimal version."""
    state = capability(store)
    await state.save_state(S, [StateItem("k", b"v")])
    etag = await etag_of(state, "k")
    if isinstance(store, MemoryStateStore):
        assert str(uuid.UUID(etag)) == etag
    else:
        assert etag.isdigit()
