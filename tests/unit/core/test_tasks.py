"""core.tasks: stopping a task ends its cancellation there, but never the caller's."""

from __future__ import annotations

import asyncio

import pytest

from pylotto.core.tasks import stop_task, stop_tasks


async def test_stopping_ends_the_tasks_quietly() -> None:
    tasks = [asyncio.create_task(asyncio.sleep(60)) for _ in range(3)]
    await stop_tasks(*tasks, None)
    assert all(task.cancelled() for task in tasks)


async def test_an_error_a_task_ended_with_is_raised() -> None:
    async def fails() -> None:
        raise ValueError("broken")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="broken"):
        await stop_task(task)


async def test_the_callers_own_cancellation_goes_on() -> None:
    """The caller's timeout fires while the task still cleans up after its cancellation: it
    reaches the caller, where ``with suppress(CancelledError): await task`` dropped it and
    the caller went on as if no timeout had fired."""

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(60)  # cleaning up; the caller's cancellation ends this too
            raise

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    went_on = False
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await stop_task(task)
            went_on = True
    assert not went_on
    assert task.cancelled()
