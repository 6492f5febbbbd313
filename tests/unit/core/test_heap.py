"""The heap trimmer: glibc's malloc_trim found and called on schedule, stopped cleanly."""

from __future__ import annotations

import asyncio
import platform

from pylotto.process.heap import HeapTrimmer, malloc_trim


def test_malloc_trim_is_found_on_glibc_only() -> None:
    trim = malloc_trim()
    if platform.libc_ver()[0] != "glibc":
        assert trim is None
        return
    assert trim is not None
    assert trim() in (0, 1)  # 1: memory was given back, 0: there was none to give


async def test_the_trimmer_runs_on_schedule_and_stops() -> None:
    trimmer = HeapTrimmer(0.01)
    calls: list[int] = []

    def counting() -> int:
        calls.append(1)
        return 0

    trimmer._trim = counting
    trimmer.start()
    await asyncio.sleep(0.2)
    await trimmer.stop()
    done = len(calls)
    assert done >= 3
    await asyncio.sleep(0.05)
    assert len(calls) == done


async def test_interval_zero_never_trims() -> None:
    trimmer = HeapTrimmer(0)
    trimmer.start()
    assert trimmer._task is None
    await trimmer.stop()
