"""The two clocks placement reads, injectable so that tests control time.

A lease holder judges its own lease by the **monotonic** clock (a wall-clock step cannot
lengthen it); a taker judges someone else's ``until`` by the **wall** clock, which is the
only clock two sidecars share (up to ``clock_skew_seconds``)."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()
