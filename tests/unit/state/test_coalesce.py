"""ReadCoalescer: reads made while the backend is busy go out as one bulk read."""

from __future__ import annotations

import asyncio

import pytest

from pylotto.components.coalesce import ReadCoalescer


class Backend:
    """A bulk read that holds every call until ``release`` is set, recording the batches."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail = fail

    async def read_many(self, keys: list[str]) -> list[str]:
        self.batches.append(keys)
        await self.release.wait()
        if self.fail:
            raise ConnectionError("backend away")
        return [f"value of {key}" for key in keys]


async def test_an_idle_read_goes_out_at_once_and_alone() -> None:
    backend = Backend()
    backend.release.set()
    reads = ReadCoalescer(backend.read_many)
    assert await reads.read("a") == "value of a"
    assert await reads.read("b") == "value of b"
    assert backend.batches == [["a"], ["b"]]


async def test_reads_made_while_busy_share_one_bulk_read_and_each_gets_its_row() -> None:
    backend = Backend()
    reads = ReadCoalescer(backend.read_many, parallel=2)
    calls = [asyncio.create_task(reads.read(f"k{n}")) for n in range(10)]
    await asyncio.sleep(0.01)
    assert backend.batches == [["k0"], ["k1"]]  # two in flight, eight waiting
    backend.release.set()
    assert await asyncio.gather(*calls) == [f"value of k{n}" for n in range(10)]
    assert backend.batches[2:] == [[f"k{n}" for n in range(2, 10)]]


async def test_batches_are_capped() -> None:
    backend = Backend()
    reads = ReadCoalescer(backend.read_many, parallel=1, max_batch=3)
    calls = [asyncio.create_task(reads.read(f"k{n}")) for n in range(8)]
    await asyncio.sleep(0.01)
    backend.release.set()
    await asyncio.gather(*calls)
    assert [len(batch) for batch in backend.batches] == [1, 3, 3, 1]


async def test_every_caller_of_a_failed_bulk_read_gets_the_error() -> None:
    backend = Backend(fail=True)
    reads = ReadCoalescer(backend.read_many, parallel=1)
    calls = [asyncio.create_task(reads.read(f"k{n}")) for n in range(4)]
    await asyncio.sleep(0.01)
    backend.release.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    backend.fail = False
    assert await reads.read("after") == "value of after"  # the slots were given back


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    backend = Backend()
    reads = ReadCoalescer(backend.read_many, parallel=1)
    first = asyncio.create_task(reads.read("first"))
    waiting = [asyncio.create_task(reads.read(k)) for k in ("gone", "kept")]
    await asyncio.sleep(0.01)
    waiting[0].cancel()
    first.cancel()  # its slot is given back when it ends
    await asyncio.sleep(0.01)
    backend.release.set()
    assert await waiting[1] == "value of kept"
    with pytest.raises(asyncio.CancelledError):
        await waiting[0]
    assert backend.batches == [["first"], ["kept"]]
