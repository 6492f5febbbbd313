"""``in-memory``: counters in the sidecar's memory (one process only; restart from 1).

Metadata: ``segmentSize`` (ids reserved per WEAK refill, default 1000), plus ``keyPrefix`` and
``biggerThan`` of every sequencer. Verbs never await, so each is atomic on the event loop.
"""

from __future__ import annotations

from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Feature, Segment, SegmentSequencer, SegmentSettings
from pylotto.core.types import Metadata


class MemorySequencer(SegmentSequencer):
    per_process = True
    features = frozenset({Feature.SEGMENT})

    def __init__(self, name: str, settings: SegmentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self._counters: dict[str, int] = {}

    def _advance(self, key: str, count: int) -> int:
        last = self._counters.get(key, 0) + count
        self._counters[key] = last
        return last

    async def next_id(self, key: str, metadata: Metadata) -> int:
        return self._advance(key, 1)

    async def get_segment(self, key: str, size: int) -> Segment:
        last = self._advance(key, size)
        return Segment(last - size + 1, last)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        self._counters[key] = max(self._counters.get(key, 0), floor)
