"""The sequencer API against every embedded store: validation, STRONG, WEAK segments,
key namespacing, biggerThan, and strict increase under concurrency."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.sequencer import Increment, SequencerCapability, increment_from_wire
from pylotto.components.sequencer.base import SegmentSequencer
from pylotto.config.model import AppConfig
from pylotto.core.errors import ComponentNotFound, ConfigError, InvalidArgument, NotConfigured
from tests.unit.sequencer.conftest import MakeStore, started

WEAK, STRONG = Increment.WEAK, Increment.STRONG


async def test_nothing_configured_comes_first() -> None:
    empty = SequencerCapability(ComponentSet("sequencer store", {}),
                                RuntimeContext(AppConfig(app_id="a"), Path("/x")))
    with pytest.raises(NotConfigured, match="sequencer store is not configured"):
        await empty.get_next_id("seq", "")


async def test_validation(make_store: MakeStore) -> None:
    seq = await started(await make_store())
    with pytest.raises(InvalidArgument, match="Key is empty in sequencer store nope"):
        await seq.get_next_id("nope", "")
    with pytest.raises(InvalidArgument, match="can't contain"):
        await seq.get_next_id("seq", "a||b")
    with pytest.raises(ComponentNotFound, match="sequencer store nope is not found"):
        await seq.get_next_id("nope", "k")
    with pytest.raises(InvalidArgument, match=r"options\.Increment is illegal"):
        increment_from_wire(7)
    assert increment_from_wire(0) is WEAK and increment_from_wire(1) is STRONG


async def test_strong_ids_are_consecutive(make_store: MakeStore) -> None:
    seq = await started(await make_store())
    assert [await seq.get_next_id("seq", "order", STRONG) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert await seq.get_next_id("seq", "other", STRONG) == 1


async def test_weak_ids_come_from_one_segment(make_store: MakeStore) -> None:
    store = await make_store(segmentSize=10)
    seq = await started(store)
    assert [await seq.get_next_id("seq", "k") for _ in range(3)] == [1, 2, 3]
    # the segment 1..10 is reserved: the component's counter is past it
    assert await seq.get_next_id("seq", "k", STRONG) == 11
    # WEAK never goes below what this sidecar handed out, STRONG included
    weak = await seq.get_next_id("seq", "k")
    assert weak > 11


async def test_weak_crosses_segments_strictly_increasing(make_store: MakeStore) -> None:
    seq = await started(await make_store(segmentSize=3))
    ids = [await seq.get_next_id("seq", "k") for _ in range(20)]
    assert ids == sorted(set(ids)) and len(ids) == 20
    await seq.stop()


async def test_mixed_modes_strictly_increase(make_store: MakeStore) -> None:
    seq = await started(await make_store(segmentSize=4))
    ids = []
    for i in range(40):
        ids.append(await seq.get_next_id("seq", "k", STRONG if i % 3 == 0 else WEAK))
    assert all(a < b for a, b in itertools.pairwise(ids)), ids
    await seq.stop()


@pytest.mark.parametrize("increment", [WEAK, STRONG])
async def test_concurrent_callers_get_unique_increasing_ids(
    make_store: MakeStore, increment: Increment
) -> None:
    seq = await started(await make_store(segmentSize=7))

    async def worker() -> list[int]:
        return [await seq.get_next_id("seq", "hot", increment) for _ in range(25)]

    per_worker = await asyncio.gather(*(worker() for _ in range(20)))
    every = [i for ids in per_worker for i in ids]
    assert len(set(every)) == len(every) == 500
    for ids in per_worker:
        assert all(a < b for a, b in itertools.pairwise(ids))
    if increment is STRONG:
        assert sorted(every) == list(range(1, 501))
    await seq.stop()


async def test_cache_is_per_store_not_per_key(make_store: MakeStore) -> None:
    one = await make_store(name="one", segmentSize=100)
    two = await make_store(name="two", segmentSize=100)
    seq = await started(one, two)
    assert await seq.get_next_id("one", "k") == 1
    assert await seq.get_next_id("one", "k") == 2
    # same key, another store: its own counter, not the first store's cached segment
    assert await seq.get_next_id("two", "k") == 1
    assert await seq.get_next_id("two", "k", STRONG) == 101
    await seq.stop()


async def test_apps_have_their_own_counters(make_store: MakeStore) -> None:
    store = await make_store()
    a, b = await started(store, app_id="a"), await started(store, app_id="b")
    assert await a.get_next_id("seq", "k", STRONG) == 1
    assert await b.get_next_id("seq", "k", STRONG) == 1
    shared = await make_store(name="shared", keyPrefix="none")
    c, d = await started(shared, app_id="c"), await started(shared, app_id="d")
    assert await c.get_next_id("shared", "k", STRONG) == 1
    assert await d.get_next_id("shared", "k", STRONG) == 2


async def test_stored_key_is_namespaced(make_store: MakeStore) -> None:
    store = await make_store()
    seq = await started(store, app_id="app")
    assert await seq.get_next_id("seq", "k", STRONG) == 1
    assert await store.next_id("sequencer|||app||k", {}) == 2


@pytest.mark.parametrize("bigger_than", [{"order": 100, "neg": -5}, '{"order": 100}'])
async def test_bigger_than(make_store: MakeStore, bigger_than: object) -> None:
    store = await make_store(biggerThan=bigger_than)
    seq = await started(store)
    assert await seq.get_next_id("seq", "order") > 100
    assert await seq.get_next_id("seq", "order", STRONG) > 100
    assert await seq.get_next_id("seq", "neg", STRONG) == 1
    assert await seq.get_next_id("seq", "untouched", STRONG) == 1


async def test_bigger_than_never_moves_a_counter_back(make_store: MakeStore) -> None:
    store = await make_store(biggerThan={"k": 5})
    seq = await started(store)
    for _ in range(10):
        last = await seq.get_next_id("seq", "k", STRONG)
    assert last == 15
    await seq.start()  # applied again (as after a restart of a durable store)
    assert await seq.get_next_id("seq", "k", STRONG) == 16


@pytest.mark.parametrize("bad", ["{not json", '{"a||b": 1}', '{"k": "many"}'])
async def test_bad_bigger_than_fails_at_decode(make_store: MakeStore, bad: str) -> None:
    with pytest.raises(ConfigError, match="biggerThan"):
        await make_store(biggerThan=bad)


async def test_bad_segment_size_fails_at_decode(make_store: MakeStore) -> None:
    with pytest.raises(ConfigError, match="segmentSize"):
        await make_store(segmentSize="0")


async def test_default_segment_size(make_store: MakeStore) -> None:
    store = await make_store()
    assert isinstance(store, SegmentSequencer)
    assert store.segment_size == 1000
