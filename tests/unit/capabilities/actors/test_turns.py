"""The turn lock: one call at a time, FIFO, reentrancy by id with a depth bound, close."""

from __future__ import annotations

import asyncio

import pytest

from pylotto.capabilities.actors.api import MOVED, Reentrancy
from pylotto.capabilities.actors.turns import TurnLock
from pylotto.core.errors import ResourceExhausted, Unavailable


async def _eventually(condition: object, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_one_turn_at_a_time_in_arrival_order() -> None:
    lock = TurnLock(Reentrancy())
    order: list[int] = []
    inside = 0
    most = 0
    release = asyncio.Event()

    async def call(n: int) -> None:
        nonlocal inside, most
        async with lock.turn() as rid:
            assert rid is None  # reentrancy off: no id for the app
            inside += 1
            most = max(most, inside)
            order.append(n)
            if n == 0:
                await release.wait()
            await asyncio.sleep(0)
            inside -= 1

    tasks = [asyncio.create_task(call(0))]
    await _eventually(lambda: order == [0])
    for n in range(1, 10):
        tasks.append(asyncio.create_task(call(n)))
        await asyncio.sleep(0)
    assert lock.waiting == 9
    release.set()
    await asyncio.gather(*tasks)
    assert order == list(range(10))
    assert most == 1
    assert not lock.busy


async def test_without_reentrancy_the_same_id_waits() -> None:
    lock = TurnLock(Reentrancy(enabled=False))
    async with lock.turn("abc"):
        inner = asyncio.create_task(_enter(lock, "abc"))
        await asyncio.sleep(0.05)
        assert not inner.done()
    await inner


async def _enter(lock: TurnLock, rid: str | None) -> str | None:
    async with lock.turn(rid) as got:
        return got


async def test_reentrant_call_joins_its_turn() -> None:
    lock = TurnLock(Reentrancy(enabled=True, max_stack_depth=32))
    async with lock.turn(None) as rid:
        assert rid is not None and len(rid) == 36  # a fresh UUID for the first call
        other = asyncio.create_task(_enter(lock, None))  # a new flight: waits
        assert await _enter(lock, rid) == rid  # joins at once
        await asyncio.sleep(0.02)
        assert not other.done()
    other_id = await other
    assert other_id is not None and other_id != rid


async def test_given_id_starts_a_flight_under_that_id() -> None:
    lock = TurnLock(Reentrancy(enabled=True))
    assert await _enter(lock, "from-the-app") == "from-the-app"


async def test_depth_past_the_limit_is_refused() -> None:
    lock = TurnLock(Reentrancy(enabled=True, max_stack_depth=32))
    depth = 0

    async def nest(rid: str | None) -> None:
        nonlocal depth
        async with lock.turn(rid) as got:
            depth += 1
            await nest(got)

    with pytest.raises(ResourceExhausted) as err:
        await nest(None)
    assert depth == 32  # the 33rd was refused
    assert err.value.where == "actors.stack_depth"
    assert err.value.message == "maximum stack depth exceeded"
    assert not lock.busy  # every level let go
    assert await _enter(lock, None) is not None


async def test_close_wakes_the_waiters() -> None:
    lock = TurnLock(Reentrancy())
    running = asyncio.Event()
    finish = asyncio.Event()

    async def first() -> str:
        async with lock.turn():
            running.set()
            await finish.wait()
            return "ran"

    head = asyncio.create_task(first())
    await running.wait()
    waiters = [asyncio.create_task(_enter(lock, None)) for _ in range(3)]
    await asyncio.sleep(0.01)
    lock.close()
    for waiter in waiters:
        with pytest.raises(Unavailable) as err:
            await waiter
        assert err.value.where == MOVED
    assert not head.done()  # the running turn goes on
    assert await lock.idle_within(0.01) is False
    finish.set()
    assert await head == "ran"
    assert await lock.idle_within(1.0) is True
    with pytest.raises(Unavailable):
        await _enter(lock, None)


async def test_cancelled_waiter_leaves_the_line() -> None:
    lock = TurnLock(Reentrancy())
    order: list[str] = []
    gate = asyncio.Event()

    async def call(name: str, wait: bool = False) -> None:
        async with lock.turn():
            order.append(name)
            if wait:
                await gate.wait()

    a = asyncio.create_task(call("a", wait=True))
    await _eventually(lambda: order == ["a"])
    b = asyncio.create_task(call("b"))
    c = asyncio.create_task(call("c"))
    await asyncio.sleep(0.01)
    b.cancel()
    gate.set()
    await asyncio.gather(a, c)
    assert b.cancelled()
    assert order == ["a", "c"]
    assert not lock.busy


async def test_cancel_running() -> None:
    lock = TurnLock(Reentrancy())
    started = asyncio.Event()

    async def stuck() -> None:
        async with lock.turn():
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await started.wait()
    assert lock.cancel_running() == 1
    with pytest.raises(Unavailable) as err:  # the caller gets an error, not a cancellation
        await task
    assert err.value.where == "actors.invoke"
    assert not lock.busy


async def test_a_cancellation_from_elsewhere_stays_one() -> None:
    lock = TurnLock(Reentrancy())
    started = asyncio.Event()

    async def stuck() -> None:
        async with lock.turn():
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not lock.busy
