"""The back-off between attempts to reach a backend again (a broker subscription's receive
loop, a configuration store's change feed): quick at first, so a blip costs little, then
slower, so a server that stays down is not hammered — and back to quick after a success.

Not to be confused with :class:`pylotto.components.pubsub.base.RetryPolicy`, the redelivery
back-off of a message a handler refused (Dapr's ``backOff*`` settings).
"""

from __future__ import annotations

RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds to wait after the 1st, 2nd... failure in a row; the last one repeats."""


class Backoff:
    """Counts failures in a row: :meth:`failed` says how long to wait, :meth:`succeeded`
    starts over."""

    __slots__ = ("delays", "failures")

    def __init__(self, delays: tuple[float, ...] = RECONNECT_DELAYS) -> None:
        self.delays = delays
        self.failures = 0

    def failed(self) -> float:
        """Count one more failure; the seconds to wait before the next attempt."""
        delay = self.delays[min(self.failures, len(self.delays) - 1)]
        self.failures += 1
        return delay

    def succeeded(self) -> bool:
        """An attempt worked: the next failure waits the first delay again. True when it
        ends a run of failures (worth a log line)."""
        recovered, self.failures = self.failures > 0, 0
        return recovered
