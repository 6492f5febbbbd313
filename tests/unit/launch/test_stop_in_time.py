"""The sidecar's stop is bounded: a close that hangs past the grace period and its margin is
left behind, with one error logged, so the process exits."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast

import pytest

from pylotto.process import server


class _Hanging:
    def __init__(self) -> None:
        self.started = False

    async def stop(self) -> None:
        self.started = True
        await asyncio.Event().wait()


class _Quick:
    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        await asyncio.sleep(0.01)
        self.stopped = True


async def test_a_hanging_stop_is_abandoned_after_the_bound(
        caplog: pytest.LogCaptureFixture) -> None:
    hanging = _Hanging()
    began = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="pylotto.server"):
        await server._stop_in_time(cast(Any, hanging), 0.3)
    assert hanging.started
    assert 0.3 <= time.monotonic() - began < 2
    assert [r.getMessage() for r in caplog.records] == [
        "stopping took longer than 0.3s; exiting without waiting further"]


async def test_a_stop_in_time_is_awaited_to_the_end() -> None:
    quick = _Quick()
    await server._stop_in_time(cast(Any, quick), 5)
    assert quick.stopped
