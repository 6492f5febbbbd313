"""Load generators: closed loop (max throughput) and open loop (fixed rate) over asyncio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.stats import Round

Op = Callable[[int], Awaitable[object]]
"""One request; the argument is the worker index (to pick a connection or key)."""


async def closed_loop(op: Op, concurrency: int, seconds: float, warmup: float,
                      cpu: Callable[[], float] | None = None, items: int = 1) -> Round:
    """``concurrency`` workers each send the next request when the previous one answered."""
    latencies: list[float] = []
    errors = 0
    first_error = ""
    measuring = False
    stop = False

    async def worker(index: int) -> None:
        nonlocal errors, first_error
        clock = time.perf_counter
        while not stop:
            began = clock()
            try:
                await op(index)
            except Exception as exc:  # counted, not fatal: a benchmark reports its errors
                errors += 1
                first_error = first_error or repr(exc)[:200]
                continue
            if measuring:
                latencies.append(clock() - began)

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    await asyncio.sleep(warmup)
    cpu0 = cpu() if cpu else 0.0
    latencies.clear()
    errors = 0
    measuring = True
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    measuring = False
    elapsed = time.perf_counter() - began
    cpu1 = cpu() if cpu else 0.0
    done = len(latencies)
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
    return Round(requests=done, seconds=elapsed, latencies_s=latencies[:done],
                 cpu_seconds=(cpu1 - cpu0) if cpu else None, errors=errors,
                 items_per_request=items, first_error=first_error)


async def fixed_rate(op: Op, rate: float, concurrency: int, seconds: float, warmup: float,
                     cpu: Callable[[], float] | None = None, items: int = 1) -> Round:
    """Requests start on a fixed schedule; latency counts from the scheduled start, so a
    stall shows up in the percentiles (no coordinated omission). ``concurrency`` bounds the
    requests in flight."""
    interval = 1.0 / rate
    latencies: list[float] = []
    errors = 0
    first_error = ""
    slot = 0
    start = time.perf_counter() + 0.01
    measure_from = start + warmup
    measure_to = measure_from + seconds
    cpu_marks: list[float] = []

    async def worker(index: int) -> None:
        nonlocal slot, errors, first_error
        clock = time.perf_counter
        while True:
            scheduled = start + slot * interval
            slot += 1
            if scheduled >= measure_to:
                return
            delay = scheduled - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await op(index)
            except Exception as exc:
                if scheduled >= measure_from:
                    errors += 1
                    first_error = first_error or repr(exc)[:200]
                continue
            if scheduled >= measure_from:
                latencies.append(clock() - scheduled)

    async def cpu_probe() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu_marks.append(cpu() if cpu else 0.0)
        await asyncio.sleep(max(0.0, measure_to - time.perf_counter()))
        cpu_marks.append(cpu() if cpu else 0.0)

    await asyncio.gather(cpu_probe(), *(worker(i) for i in range(concurrency)))
    return Round(requests=len(latencies), seconds=seconds, latencies_s=latencies,
                 cpu_seconds=(cpu_marks[1] - cpu_marks[0]) if cpu else None, errors=errors,
                 items_per_request=items, first_error=first_error)
