"""Actor timers: in this sidecar's memory, as daprd's (``pkg/actors/internal/timers/inmemory``).

A timer fires first at its due time (empty: now), then every period (``R<n>/`` limits the
ticks to n), until its TTL, its last repetition, an unregister, or the app's answer
``X-Daprremindercancel: true`` (daprd 1.19 ends a timer the same way). Each tick goes through
the :data:`~pylotto.capabilities.actors.api.TickSink` — the router, which takes it to the
actor's sidecar and runs it in a turn — never straight to the app. The next tick is timed
only once the current one is answered, from the tick's own time (not from the answer), so a
timer never overlaps itself and a slow app makes it catch up rather than drift. A tick the
router could not deliver is not retried: as daprd, a timer ticks on whatever the outcome.

Timers die with the sidecar (reminders are the durable kind) and, as in daprd, deactivating
an actor does not remove its timers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pylotto.capabilities.actors.api import (
    SEPARATOR,
    ActorRef,
    Tick,
    TickKind,
    TickOutcome,
    TickSink,
    Timers,
    TimerSpec,
)
from pylotto.capabilities.actors.periods import PeriodError, TimerTimes, timer_times
from pylotto.core.errors import InvalidArgument, Unavailable
from pylotto.core.tasks import stop_task, stop_tasks
from pylotto.observability.dapr_metrics import DaprMetrics

log = logging.getLogger("pylotto.actors.timers")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True, eq=False)
class _Timer:
    key: str
    tick: Tick
    times: TimerTimes
    next_at: datetime
    repeats: int
    task: asyncio.Task[None] | None = None
    firing: bool = False
    """A tick is with the sink now (an unregister from the app's callback lands here)."""
    gone: bool = False


class MemoryTimers(Timers):
    """Timers in memory (asyncio). ``hosted``: whether this sidecar's app hosts an actor
    type (None: not checked here; an attribute, so the runtime built after this may set
    it); ``now``: the wall clock due times and TTLs count from; ``metrics``: where the timers
    per type and their ticks are counted (daprd's ``dapr_runtime_actor_timers`` and
    ``_timers_fired_total``)."""

    def __init__(self, hosted: Callable[[str], bool] | None = None, *,
                 now: Callable[[], datetime] = _utcnow,
                 metrics: DaprMetrics | None = None) -> None:
        self.hosted, self.now = hosted, now
        self.metrics = metrics if metrics is not None else DaprMetrics("")
        self._sink: TickSink | None = None
        self._timers: dict[str, _Timer] = {}
        self._per_type: dict[str, int] = {}
        self.fired = 0
        """Ticks handed to the sink (whatever their outcome)."""

    def start(self, sink: TickSink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None
        timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.gone = True
            self._counted(timer, -1)
        await stop_tasks(*(timer.task for timer in timers))

    def count(self, actor_type: str | None = None) -> int:
        """Timers registered (of ``actor_type``, when given)."""
        return sum(1 for timer in self._timers.values()
                   if actor_type is None or timer.tick.actor.type == actor_type)

    async def register(self, actor: ActorRef, name: str, spec: TimerSpec) -> None:
        if self._sink is None:
            raise Unavailable("actor runtime is closed", where="actors.closed")
        key = f"{actor.key}{SEPARATOR}{name}"
        if self.hosted is not None and not self.hosted(actor.type):
            text = f"can't create timer for actor {actor.key}: actor type not registered"
            raise InvalidArgument(text, where="actors.timer_create", detail=text,
                                  actor_type=actor.type, actor_id=actor.id, name=name)
        try:
            times = timer_times(key, spec.due_time, spec.period, spec.ttl, self.now())
        except PeriodError as err:
            raise InvalidArgument(str(err), where="actors.timer_create", detail=str(err),
                                  actor_type=actor.type, actor_id=actor.id,
                                  name=name) from None
        await self._drop(key)
        if not times.active(times.first):
            log.info("timer %s has expired", key)
            return
        timer = _Timer(key, Tick(actor, TickKind.TIMER, name, due_time=spec.due_time,
                                 period=spec.period, data=spec.data, callback=spec.callback),
                       times, times.first, times.period.repeats)
        self._timers[key] = timer
        self._counted(timer, 1)
        timer.task = asyncio.create_task(self._run(timer), name=f"timer {key}")

    async def unregister(self, actor: ActorRef, name: str) -> None:
        await self._drop(f"{actor.key}{SEPARATOR}{name}")

    async def _drop(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is None:
            return
        timer.gone = True
        self._counted(timer, -1)
        if not timer.firing:  # a tick in flight ends on its own (it may be the caller's)
            await stop_task(timer.task)

    def _remove(self, timer: _Timer, why: str) -> None:
        timer.gone = True
        if self._timers.get(timer.key) is timer:
            del self._timers[timer.key]
            self._counted(timer, -1)
            log.debug("timer %s %s", timer.key, why)

    def _counted(self, timer: _Timer, delta: int) -> None:
        actor_type = timer.tick.actor.type
        count = self._per_type[actor_type] = self._per_type.get(actor_type, 0) + delta
        self.metrics.actor_timer_count(actor_type, count)

    async def _run(self, timer: _Timer) -> None:
        while True:
            delay = (timer.next_at - self.now()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            sink = self._sink
            if timer.gone or sink is None:
                return
            timer.firing = True
            outcome: TickOutcome | None = None
            try:
                self.fired += 1
                outcome = await sink(timer.tick)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the router's error: the timer ticks on, as daprd's
                log.warning("timer %s: %s", timer.key, getattr(err, "message", err))
            finally:
                timer.firing = False
            self.metrics.actor_timer_fired(timer.tick.actor.type,
                                           outcome is not None and outcome.delivered)
            if timer.gone:
                return
            if outcome is not None and outcome.cancel:
                self._remove(timer, "cancelled by the app")
                return
            if outcome is not None and not outcome.delivered:
                log.warning("timer %s: tick not delivered", timer.key)
            if timer.repeats > 0:
                timer.repeats -= 1
            period = timer.times.period
            if not period.has_repeats(timer.repeats):
                self._remove(timer, "has been completed")
                return
            timer.next_at = period.following(timer.next_at)
            if not timer.times.active(timer.next_at):
                self._remove(timer, "has expired")
                return
