"""Coalesced reads: single-key reads that arrive while the backend is busy go out together.

A component whose backend can read many keys in one round trip (a Lua script, MGET, ``IN``)
wraps that bulk read in a :class:`ReadCoalescer`. While fewer than ``parallel`` reads are in
flight a read goes out at once, alone — an idle sidecar adds no latency. Reads arriving while
the limit is reached wait, and go out as one bulk read as soon as a slot frees: under load many
GetState calls cost one round trip and one driver call instead of one each.

Each caller gets its own row, or the bulk read's error. A caller that is cancelled (a deadline)
stops waiting; the others are not affected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

ReadMany = Callable[[list[K]], Awaitable[Sequence[V]]]


class ReadCoalescer(Generic[K, V]):
    def __init__(self, read_many: ReadMany[K, V], *, parallel: int = 2,
                 max_batch: int = 128) -> None:
        self._read_many = read_many
        self._parallel = parallel
        self._max_batch = max_batch
        self._in_flight = 0
        self._waiting: list[tuple[K, asyncio.Future[V]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: K) -> V:
        if self._in_flight < self._parallel and not self._waiting:
            self._in_flight += 1
            try:
                [row] = await self._read_many([key])
                return row
            finally:
                self._in_flight -= 1
                self._next()
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.append((key, future))
        return await future

    def _next(self) -> None:
        """Send what waits, while there is a free slot."""
        while self._waiting and self._in_flight < self._parallel:
            batch = self._waiting[:self._max_batch]
            del self._waiting[:self._max_batch]
            batch = [(key, future) for key, future in batch if not future.done()]
            if batch:
                self._in_flight += 1
                task = asyncio.get_running_loop().create_task(self._send(batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            rows = await self._read_many([key for key, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        except BaseException:  # cancelled (the loop is closing): so are its callers
            for _, future in batch:
                future.cancel()
            raise
        else:
            for (_, future), row in zip(batch, rows, strict=True):
                if not future.done():
                    future.set_result(row)
        finally:
            self._in_flight -= 1
            self._next()
