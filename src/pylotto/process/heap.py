"""Give the heap memory the process freed back to the operating system.

Bursts of large buffers — hundreds of GetFile streams each holding file chunks, thousands of
streams opened and dropped at once — are freed when they end, but glibc's allocator keeps the
freed pages of its heaps (one arena per thread that allocated) for later use: the resident size
stays at the burst's high-water mark although nothing is in use (issue 17: 500 stalled GetFile
streams, then killed, left RSS at 204-271 MiB; ``malloc_trim(0)`` brought it back to 84-86 MiB,
the size before the burst). :class:`HeapTrimmer` calls ``malloc_trim(0)`` every
``interval`` seconds, in a thread; where the C library is not glibc it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

from pylotto.core.tasks import stop_task

log = logging.getLogger("pylotto.heap")


def malloc_trim() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``, or None when the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: int(function(0))


class HeapTrimmer:
    """``start()`` a task trimming the heap every ``interval`` seconds; ``stop()`` ends it."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._trim = malloc_trim() if interval > 0 else None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._trim is not None and self._task is None:
            self._task = asyncio.create_task(self._run(self._trim), name="heap-trimmer")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)

    async def _run(self, trim: Callable[[], int]) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(trim)
            except Exception as exc:  # never worth stopping the sidecar for
                log.debug("malloc_trim failed: %r", exc)
