"""The WEAK segment cache: stale segments (raced past by STRONG calls) are replaced, a store
whose ids stop growing is reported."""

from __future__ import annotations

import pytest

from pylotto.capabilities.sequencer import SegmentCache
from pylotto.components.sequencer.base import Segment
from pylotto.core.errors import Internal


async def test_segments_raced_past_by_strong_calls_are_replaced() -> None:
    segments = iter([Segment(1, 10), Segment(11, 20), Segment(21, 30), Segment(31, 40),
                     Segment(41, 50)])

    async def fetch() -> Segment:
        return next(segments)

    cache = SegmentCache(fetch, refill_at=0, label="k")
    cache.observe(35)  # STRONG calls already handed out ids up to 35
    assert await cache.next_id() == 36  # 4 stale segments skipped, no error
    assert await cache.next_id() == 37


async def test_a_store_whose_ids_do_not_grow_is_reported() -> None:
    calls = 0

    async def fetch() -> Segment:
        nonlocal calls
        calls += 1
        return Segment(1, 10)

    cache = SegmentCache(fetch, refill_at=0, label="k")
    cache.observe(100)
    with pytest.raises(Internal, match="not above the last id handed out"):
        await cache.next_id()
    assert calls == 2  # the second identical segment shows the store is stuck
