"""What every call from the sidecar to its app passes through: the app's health and the
concurrency limit (``dapr run --enable-app-health-check``, ``--app-max-concurrency``).

While the app is unhealthy (its health probe failed ``threshold`` times in a row, or has not
passed yet), an invocation of it is refused (``app is not in a healthy state``, Dapr's message)
and a delivery waits until the app is healthy again: events stay with the broker instead of
failing into retries or dead letters. With a concurrency limit, a call beyond it waits for a
free slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from pylotto.core.errors import Internal

UNHEALTHY_MESSAGE = "app is not in a healthy state"


class AppGate:
    def __init__(self, max_concurrency: int | None = None, *,
                 health_checked: bool = False) -> None:
        self._slots = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.health_checked = health_checked
        self._healthy = asyncio.Event()
        if not health_checked:
            self._healthy.set()

    @property
    def healthy(self) -> bool:
        return self._healthy.is_set()

    def set_healthy(self, healthy: bool) -> None:
        if healthy:
            self._healthy.set()
        else:
            self._healthy.clear()

    @contextlib.asynccontextmanager
    async def call(self, *, wait_for_health: bool = False) -> AsyncIterator[None]:
        """One call to the app: refused (or, with ``wait_for_health``, held) while the app is
        unhealthy, held while the concurrency limit is reached."""
        if not self._healthy.is_set():
            if not wait_for_health:
                raise Internal(UNHEALTHY_MESSAGE)
            await self._healthy.wait()
        if self._slots is None:
            yield
            return
        async with self._slots:
            yield


OPEN_GATE = AppGate()
"""The gate of an app with neither health checks nor a concurrency limit."""
