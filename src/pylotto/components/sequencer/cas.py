"""Sequencers whose backend moves a counter by compare-and-swap (etcd, ZooKeeper).

A subclass writes :meth:`CasSequencer.swap`: read the counter, write ``to(current)`` only if
nobody moved it meanwhile, retry otherwise. Moves of one key are serialised inside the sidecar
(over a fixed set of locks), so only other sidecars can make a swap fail; a key still too
contended after ``MAX_ATTEMPTS`` rounds is reported as Unavailable.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable

from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.core.errors import Unavailable
from pylotto.core.types import Metadata

MAX_ATTEMPTS = 100
"""Compare-and-swap rounds before a hot key is reported (Unavailable)."""
LOCK_STRIPES = 64
"""In-sidecar locks keys are spread over (moves of one key never race each other)."""


class CasSequencer(SegmentSequencer):
    features = frozenset({Feature.SEGMENT})

    def __init__(self, name: str, settings: SegmentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

    @abc.abstractmethod
    async def swap(self, key: str, to: Callable[[int], int]) -> int | None:
        """One round: set the counter to ``to(current)`` if it did not move meanwhile; the new
        value, or None when another writer got there first."""

    async def _move(self, key: str, to: Callable[[int], int]) -> int:
        async with self._locks[hash(key) % len(self._locks)]:
            for _ in range(MAX_ATTEMPTS):
                moved = await self.swap(key, to)
                if moved is not None:
                    return moved
        raise Unavailable(f"sequencer store {self.name}: key {key!r} is too contended "
                          f"({MAX_ATTEMPTS} attempts)")

    async def next_id(self, key: str, metadata: Metadata) -> int:
        return await self._move(key, lambda current: current + 1)

    async def get_segment(self, key: str, size: int) -> Segment:
        last = await self._move(key, lambda current: current + size)
        return Segment(last - size + 1, last)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        await self._move(key, lambda current: max(current, floor))
