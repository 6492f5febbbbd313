"""``snowflake``: ids made from the clock, with no server at all (Twitter's Snowflake layout).

An id is ``timestamp << (workerBits + seqBits) | workerId << seqBits | sequence``: the
milliseconds since ``startTime``, the sidecar's worker id, and a counter within the
millisecond. Ids of one sidecar strictly increase (for every key: one generator serves them
all); sidecars with different worker ids never hand out the same id. Ids are not consecutive,
and ids of two sidecars interleave only roughly in time order (Layotto's WEAK promise).

Metadata: ``workerId`` (0 to 2^workerBits - 1, default 0: give each sidecar sharing ids its
own), ``startTime`` (the epoch, an ISO date, default ``2024-01-01``), ``timeBits`` (41),
``workerBits`` (10), ``seqBits`` (12) — the three must add up to 63. ``keyPrefix`` is
accepted like every sequencer's; ``biggerThan`` floors are checked against the current id
(a floor above it cannot be met and stops the sidecar with a configuration error).

The millisecond in an id is the clock's, or the last one used when the clock is behind it (a
clock stepped back, or 2^seqBits ids in one millisecond: the generator then runs a little
ahead of the clock): ids strictly increase without ever waiting. A horizon is kept in
``<data_dir>/snowflake-<name>.last``: while running, a millisecond one second ahead of the
ids handed out (rewritten once a second); after a clean close, the last millisecond used. A
restart continues after the horizon, so it never repeats ids, even after a crash or with a
clock that stepped back in between.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import Field, model_validator

from pylotto.components.base import ComponentContext
from pylotto.components.sequencer.base import Sequencer, SequencerSettings
from pylotto.core.errors import ConfigError, Unavailable
from pylotto.core.types import Metadata


class SnowflakeSettings(SequencerSettings):
    worker_id: int = Field(0, alias="workerId", ge=0)
    start_time: date = Field(date(2024, 1, 1), alias="startTime")
    time_bits: int = Field(41, alias="timeBits", ge=30, le=53)
    worker_bits: int = Field(10, alias="workerBits", ge=0, le=20)
    seq_bits: int = Field(12, alias="seqBits", ge=1, le=22)

    @model_validator(mode="after")
    def _fits(self) -> SnowflakeSettings:
        if self.time_bits + self.worker_bits + self.seq_bits != 63:
            raise ValueError("timeBits + workerBits + seqBits must be 63")
        if self.worker_id >= 1 << self.worker_bits:
            raise ValueError(f"workerId must be below {1 << self.worker_bits}")
        return self


class SnowflakeSequencer(Sequencer):
    per_process = True
    Settings = SnowflakeSettings
    settings: SnowflakeSettings

    def __init__(self, name: str, settings: SnowflakeSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        start = datetime.combine(settings.start_time, datetime.min.time(), tzinfo=UTC)
        self._epoch_ms = int(start.timestamp() * 1000)
        self._seq_mask = (1 << settings.seq_bits) - 1
        self._max_ms = (1 << settings.time_bits) - 1
        self._last_ms = -1
        self._seq = 0
        self._horizon_ms = -1
        self._state = Path(context.data_dir) / f"snowflake-{name}.last"

    async def init(self) -> None:
        try:
            self._last_ms = int(self._state.read_text().strip())
            self._seq = self._seq_mask  # the saved millisecond counts as used up
        except FileNotFoundError:
            pass
        except ValueError:
            self.context.logger.warning("ignoring unreadable %s", self._state)

    async def close(self) -> None:
        if self._last_ms >= 0:
            self._write(self._last_ms)

    def _write(self, horizon: int) -> None:
        self._state.parent.mkdir(parents=True, exist_ok=True)
        self._state.write_text(str(horizon))
        self._horizon_ms = horizon

    def _now_ms(self) -> int:
        return time.time_ns() // 1_000_000 - self._epoch_ms

    def _compose(self, ms: int, seq: int) -> int:
        s = self.settings
        return (ms << (s.worker_bits + s.seq_bits)) | (s.worker_id << s.seq_bits) | seq

    async def next_id(self, key: str, metadata: Metadata) -> int:
        # Never awaits, so concurrent callers cannot interleave. The millisecond used is the
        # clock's or, when the clock is behind (stepped back, or a millisecond's sequence is
        # used up), the last one used: ids keep increasing without waiting.
        ms = max(self._now_ms(), self._last_ms)
        if ms == self._last_ms:
            self._seq = (self._seq + 1) & self._seq_mask
            if self._seq == 0:
                ms += 1
        else:
            self._seq = 0
        if ms > self._max_ms:
            raise Unavailable(f"sequencer store {self.name}: timeBits exhausted since startTime")
        self._last_ms = ms
        if ms >= self._horizon_ms:
            self._write(ms + 1000)
        return self._compose(ms, self._seq)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        current = self._compose(max(self._now_ms(), self._last_ms), self._seq_mask)
        if floor >= current:
            raise ConfigError(f"sequencer store {self.name}: snowflake ids cannot be moved "
                              f"forward; {floor} is above the current id {current}")
