"""In-memory actor timers on a real asyncio loop, with a recording TickSink in the router's
place: due time, period, R<n> repetitions, TTL, replacement, unregister (also from inside a
tick), a tick answering cancel, a failing router, bad registrations and unhosted types."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from pylotto.capabilities.actors.api import (
    ActorRef,
    Tick,
    TickKind,
    TickOutcome,
    TimerSpec,
)
from pylotto.capabilities.actors.timers import MemoryTimers
from pylotto.core.errors import InvalidArgument, Unavailable

pytestmark = pytest.mark.timeout(60)

A = ActorRef("Counter", "a1")
B = ActorRef("Counter", "b2")


class Sink:
    """The router's place: records each tick with the time it came."""

    def __init__(self) -> None:
        self.ticks: list[tuple[float, Tick]] = []
        self.answer: Callable[[Tick], TickOutcome] = lambda tick: TickOutcome(True)
        self.before: Callable[[Tick], object] | None = None
        self.delay = 0.0

    async def __call__(self, tick: Tick) -> TickOutcome:
        self.ticks.append((time.monotonic(), tick))
        if self.before is not None:
            result = self.before(tick)
            if asyncio.iscoroutine(result):
                await result
        await asyncio.sleep(self.delay)
        return self.answer(tick)

    def of(self, actor: ActorRef, name: str) -> list[float]:
        return [at for at, tick in self.ticks if tick.actor == actor and tick.name == name]


@pytest.fixture
async def timers() -> AsyncIterator[tuple[MemoryTimers, Sink]]:
    sink = Sink()
    memory = MemoryTimers(hosted=lambda actor_type: actor_type == "Counter")
    memory.start(sink)
    yield memory, sink
    await memory.stop()


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_timer_ticks_after_its_due_time_then_every_period(
        timers: tuple[MemoryTimers, Sink]) -> None:
    memory, sink = timers
    started = time.monotonic()
    await memory.register(A, "t", TimerSpec(due_time="200ms", period="100ms",
                                            callback="on_tick", data=b'"x"'))
    await eventually(lambda: len(sink.of(A, "t")) >= 4)
    at = sink.of(A, "t")
    assert at[0] - started >= 0.19
    assert at[3] - at[0] >= 0.29  # three periods at least, never bunched
    tick = sink.ticks[0][1]
    assert tick == Tick(A, TickKind.TIMER, "t", due_time="200ms", period="100ms",
                        data=b'"x"', callback="on_tick")
    await memory.unregister(A, "t")
    count = len(sink.of(A, "t"))
    await asyncio.sleep(0.3)
    assert len(sink.of(A, "t")) == count
    assert memory.count() == 0


async def test_r_n_ticks_n_times_then_the_timer_is_gone(
        timers: tuple[MemoryTimers, Sink]) -> None:
    memory, sink = timers
    await memory.register(A, "three", TimerSpec(due_time="0s", period="R3/PT1S"))
    await memory.register(A, "zero", TimerSpec(period="R3/PT0S"))  # no period: one tick
    await memory.register(B, "once", TimerSpec(due_time="10ms"))
    await eventually(lambda: memory.count() == 0)
    assert len(sink.of(A, "three")) == 3
    at = sink.of(A, "three")
    assert at[2] - at[0] >= 1.9
    assert len(sink.of(A, "zero")) == 1 and len(sink.of(B, "once")) == 1
    with pytest.raises(InvalidArgument):  # R<n>/ wants an ISO duration after it
        await memory.register(A, "go", TimerSpec(period="R3/50ms"))


async def test_ttl_ends_a_periodic_timer(timers: tuple[MemoryTimers, Sink]) -> None:
    memory, sink = timers
    await memory.register(A, "ttl", TimerSpec(period="100ms", ttl="350ms"))
    await eventually(lambda: memory.count() == 0, within=5.0)
    assert 3 <= len(sink.of(A, "ttl")) <= 4  # at 0, 100, 200, 300 ms: before the end


async def test_a_tick_answering_cancel_removes_the_timer(
        timers: tuple[MemoryTimers, Sink]) -> None:
    memory, sink = timers
    sink.answer = lambda tick: TickOutcome(True, cancel=len(sink.of(A, "c")) >= 2)
    await memory.register(A, "c", TimerSpec(period="20ms"))
    await eventually(lambda: memory.count() == 0)
    await asyncio.sleep(0.1)
    assert len(sink.of(A, "c")) == 2


async def test_undelivered_and_failing_ticks_tick_on(timers: tuple[MemoryTimers, Sink]) -> None:
    memory, sink = timers

    def answer(tick: Tick) -> TickOutcome:
        if len(sink.of(A, "f")) % 2:
            raise Unavailable("actor moved", where="actors.moved")
        return TickOutcome(False)

    sink.answer = answer
    await memory.register(A, "f", TimerSpec(period="20ms"))
    await eventually(lambda: len(sink.of(A, "f")) >= 5)
    assert memory.count() == 1


async def test_a_slow_tick_is_never_overlapped(timers: tuple[MemoryTimers, Sink]) -> None:
    memory, sink = timers
    running: list[int] = [0, 0]

    async def before(tick: Tick) -> None:
        running[0] += 1
        running[1] = max(running[1], running[0])
        await asyncio.sleep(0.08)
        running[0] -= 1

    sink.before = before
    await memory.register(A, "slow", TimerSpec(period="10ms"))
    await eventually(lambda: len(sink.of(A, "slow")) >= 4)
    assert running[1] == 1


async def test_unregister_from_inside_the_tick(timers: tuple[MemoryTimers, Sink]) -> None:
    """The SDK's actor unregisters its timer from the timer's callback: while the tick is
    with the sink. The unregister must not wait for that tick (it is its caller)."""
    memory, sink = timers

    async def before(tick: Tick) -> None:
        async with asyncio.timeout(2):
            await memory.unregister(tick.actor, tick.name)

    sink.before = before
    await memory.register(A, "self", TimerSpec(period="10ms"))
    await eventually(lambda: memory.count() == 0)
    await asyncio.sleep(0.1)
    assert len(sink.of(A, "self")) == 1


async def test_registering_again_replaces(timers: tuple[MemoryTimers, Sink]) -> None:
    memory, sink = timers
    await memory.register(A, "x", TimerSpec(due_time="1h"))
    await memory.register(A, "x", TimerSpec(due_time="10ms", data=b"2"))
    await eventually(lambda: len(sink.of(A, "x")) == 1)
    assert sink.ticks[0][1].data == b"2"
    await eventually(lambda: memory.count() == 0)


async def test_bad_registrations_are_refused_at_timer_create(
        timers: tuple[MemoryTimers, Sink]) -> None:
    memory, _ = timers
    for spec, text in [
        (TimerSpec(period="every second"),
         "invalid timer period: parse error: unsupported duration format: every second"),
        (TimerSpec(due_time="later"),
         "error parsing timer due time: unsupported time/duration format: later"),
        (TimerSpec(period="R0/PT1S"), "invalid timer period: has zero repetitions"),
        (TimerSpec(period="1s", ttl="2020-01-01T00:00:00Z"), "has already expired"),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            await memory.register(A, "bad", spec)
        assert caught.value.where == "actors.timer_create"
        assert text in caught.value.message
        assert caught.value.fields["detail"] == caught.value.message  # daprd's %s
    with pytest.raises(InvalidArgument) as caught:
        await memory.register(ActorRef("Other", "1"), "t", TimerSpec())
    assert caught.value.message == ("can't create timer for actor Other||1: actor type not "
                                    "registered")
    assert memory.count() == 0


async def test_a_month_period_is_taken(timers: tuple[MemoryTimers, Sink]) -> None:
    memory, sink = timers
    await memory.register(A, "monthly", TimerSpec(period="P1M"))
    await eventually(lambda: len(sink.of(A, "monthly")) == 1)
    assert memory.count() == 1  # next tick in a month


async def test_stopped_timers_refuse_and_tick_no_more() -> None:
    sink = Sink()
    memory = MemoryTimers()
    with pytest.raises(Unavailable):
        await memory.register(A, "t", TimerSpec())
    memory.start(sink)
    await memory.register(A, "t", TimerSpec(period="10ms"))
    await eventually(lambda: len(sink.ticks) >= 1)
    await memory.stop()
    count = len(sink.ticks)
    await asyncio.sleep(0.1)
    assert len(sink.ticks) == count
    with pytest.raises(Unavailable):
        await memory.register(A, "t", TimerSpec())
