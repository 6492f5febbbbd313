"""Resiliency policies on component calls (Dapr's targets.components.<name>.outbound)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.state import StateItem
from pylotto.components.base import ComponentContext
from pylotto.components.state.base import Consistency, GetResult, StateSettings
from pylotto.components.state.memory import MemoryStateStore
from pylotto.core.errors import Unavailable
from pylotto.core.resiliency import Resiliency, ResiliencyConfig
from tests.unit.state.support import capability


class Flaky(MemoryStateStore):
    """Fails ``failures`` reads with Unavailable, then works."""

    def __init__(self, failures: int) -> None:
        super().__init__("store", StateSettings(), ComponentContext("app", Path("/tmp")))
        self.failures = failures
        self.reads = 0

    async def get(self, key: str, consistency: Consistency, metadata: Any) -> GetResult | None:
        self.reads += 1
        if self.reads <= self.failures:
            raise Unavailable("backend blinked")
        return await super().get(key, consistency, metadata)


def policies(max_retries: int) -> Resiliency:
    return Resiliency(ResiliencyConfig.model_validate({
        "policies": {"retries": {"r": {"duration": "10ms", "maxRetries": max_retries}},
                     "circuitBreakers": {"cb": {"timeout": "60s",
                                                "trip": "consecutiveFailures >= 5"}}},
        "targets": {"components": {"store": {"outbound": {"retry": "r",
                                                          "circuitBreaker": "cb"}}}}}))


async def test_a_retry_policy_hides_a_short_outage() -> None:
    store = Flaky(failures=2)
    state = capability(store)
    await state.save_state("store", [StateItem("k", b"v")])
    state.resiliency = policies(max_retries=3)
    assert (await state.get_state("store", "k")).value == b"v"
    assert store.reads == 3


async def test_the_breaker_opens_after_repeated_failures() -> None:
    store = Flaky(failures=100)
    state = capability(store)
    state.resiliency = policies(max_retries=0)
    for _ in range(5):
        with pytest.raises(Unavailable, match="backend blinked"):
            await state.get_state("store", "k")
    with pytest.raises(Unavailable, match=r"circuit breaker cb \(component store\) is open"):
        await state.get_state("store", "k")
    assert store.reads == 5
