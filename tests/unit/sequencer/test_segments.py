"""The segment cache and WEAK fallbacks, with hand-made sequencers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.sequencer import Increment, SegmentCache, SequencerCapability
from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import (
    Segment,
    SegmentSettings,
    Sequencer,
    SequencerSettings,
)
from pylotto.components.sequencer.memory import MemorySequencer
from pylotto.config.model import AppConfig
from pylotto.core.errors import Internal, Unavailable
from pylotto.core.metadata import decode
from pylotto.core.types import Metadata

CONTEXT = ComponentContext(app_id="app", data_dir=Path("/nonexistent"))


class CountingSequencer(Sequencer):
    """No segments: WEAK must fall back to next_id."""

    def __init__(self) -> None:
        super().__init__("plain", decode(SequencerSettings, {}, component="s"), CONTEXT)
        self.calls = 0

    async def next_id(self, key: str, metadata: Metadata) -> int:
        self.calls += 1
        return self.calls

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        self.calls = max(self.calls, floor)


class SpySequencer(MemorySequencer):
    def __init__(self, **metadata: object) -> None:
        super().__init__("spy", decode(SegmentSettings, metadata, component="s"), CONTEXT)
        self.segments: list[Segment] = []
        self.fail = False

    async def get_segment(self, key: str, size: int) -> Segment:
        await asyncio.sleep(0)
        if self.fail:
            raise Unavailable("store down")
        segment = await super().get_segment(key, size)
        self.segments.append(segment)
        return segment


def capability(*stores: Sequencer) -> SequencerCapability:
    return SequencerCapability(
        ComponentSet("sequencer store", {s.name: s for s in stores}),
        RuntimeContext(AppConfig(app_id="app"), Path("/nonexistent")),
    )


async def test_weak_without_segments_uses_next_id() -> None:
    store = CountingSequencer()
    seq = capability(store)
    assert [await seq.get_next_id("plain", "k") for _ in range(3)] == [1, 2, 3]
    assert store.calls == 3


async def test_next_segment_is_prefetched_before_the_current_runs_out() -> None:
    store = SpySequencer(segmentSize=10)
    seq = capability(store)
    for _ in range(9):
        await seq.get_next_id("spy", "k")
    await asyncio.sleep(0.01)
    assert store.segments == [Segment(1, 10), Segment(11, 20)]
    ids = [await seq.get_next_id("spy", "k") for _ in range(5)]
    assert ids == [10, 11, 12, 13, 14]
    assert len(store.segments) == 2
    await seq.stop()


async def test_a_failed_prefetch_is_retried_when_needed() -> None:
    store = SpySequencer(segmentSize=10)
    seq = capability(store)
    store.fail = True
    with pytest.raises(Unavailable, match=r"failed to get next id of k .*store down"):
        await seq.get_next_id("spy", "k")
    store.fail = False
    assert await seq.get_next_id("spy", "k") == 1
    store.fail = True  # the prefetch of 11..20, started at id 9, fails
    assert [await seq.get_next_id("spy", "k") for _ in range(9)] == list(range(2, 11))
    await asyncio.sleep(0.01)
    store.fail = False
    assert await seq.get_next_id("spy", "k") == 11
    assert store.segments == [Segment(1, 10), Segment(11, 20)]
    await seq.stop()


async def test_stop_cancels_prefetches() -> None:
    fetched = 0
    cancelled = asyncio.Event()

    async def fetch() -> Segment:
        nonlocal fetched
        fetched += 1
        if fetched == 1:
            return Segment(1, 2)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    cache = SegmentCache(fetch, 1, "test")
    assert await cache.next_id() == 1  # one id left: the next segment is being prefetched
    await asyncio.sleep(0)
    assert fetched == 2
    await cache.close()
    assert cancelled.is_set()


async def test_store_that_does_not_grow_is_reported() -> None:
    async def fetch() -> Segment:
        return Segment(1, 5)

    cache = SegmentCache(fetch, 0, "stuck store")
    assert [await cache.next_id() for _ in range(5)] == [1, 2, 3, 4, 5]
    with pytest.raises(Internal, match=r"stuck store: the store returned ids 1\.\.5"):
        await cache.next_id()
    await cache.close()


async def test_observed_strong_ids_are_skipped() -> None:
    segments = iter([Segment(1, 10), Segment(11, 20)])

    async def fetch() -> Segment:
        return next(segments)

    cache = SegmentCache(fetch, 0, "t")
    assert await cache.next_id() == 1
    cache.observe(15)
    assert await cache.next_id() == 16
    await cache.close()


async def test_strong_after_weak_does_not_reuse_cached_ids() -> None:
    store = SpySequencer(segmentSize=5)
    seq = capability(store)
    assert await seq.get_next_id("spy", "k", Increment.WEAK) == 1
    assert await seq.get_next_id("spy", "k", Increment.STRONG) == 6
    assert await seq.get_next_id("spy", "k", Increment.WEAK) > 6
    await seq.stop()
