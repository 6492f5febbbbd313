"""Stopping background tasks: one rule for every loop pylotto runs.

``await stop_tasks(a, b)`` cancels the tasks and waits until each has ended, so nothing of
them runs once the owner's ``stop``/``close`` returned. The cancellation of the tasks ends
there; a cancellation of the *caller* arriving meanwhile goes on (the common
``task.cancel(); with suppress(CancelledError): await task`` swallowed it, so a caller under a
timeout waited on for ever behind a task that did not end)."""

from __future__ import annotations

import asyncio
from typing import Any


async def stop_tasks(*tasks: asyncio.Task[Any] | asyncio.Future[Any] | None) -> None:
    """Cancel ``tasks`` (None: none there) and wait for all of them; an error a task ended
    with is raised, as ``await task`` would."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    caller = asyncio.current_task()
    before = caller.cancelling() if caller is not None else 0
    for task in running:
        try:
            await task
        except asyncio.CancelledError:
            if caller is not None and caller.cancelling() > before:
                raise


async def stop_task(task: asyncio.Task[Any] | asyncio.Future[Any] | None) -> None:
    """:func:`stop_tasks` of one task."""
    await stop_tasks(task)
