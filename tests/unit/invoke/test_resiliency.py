"""Resiliency policies: timeouts, retries, circuit breakers (Dapr's format)."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import ValidationError

from pylotto.core.errors import DeadlineExceeded, Internal, Unavailable
from pylotto.core.resiliency import BreakerState, Resiliency, ResiliencyConfig

SPEC = {
    "policies": {
        "timeouts": {"fast": "100ms"},
        "retries": {"three": {"policy": "constant", "duration": "10ms", "maxRetries": 3},
                    "grow": {"policy": "exponential", "initialInterval": "10ms",
                             "maxInterval": "40ms"}},
        "circuitBreakers": {"cb": {"maxRequests": 1, "timeout": "200ms",
                                   "trip": "consecutiveFailures >= 2"}},
    },
    "targets": {"apps": {
        "slow": {"timeout": "fast"},
        "flaky": {"retry": "three"},
        "broken": {"circuitBreaker": "cb"},
    }},
}


def resiliency() -> Resiliency:
    return Resiliency(ResiliencyConfig.model_validate(SPEC))


class Target:
    def __init__(self, outcomes: list[BaseException | str], delay: float = 0.0) -> None:
        self.outcomes = outcomes
        self.calls = 0
        self.delay = delay

    async def __call__(self, limit: float | None) -> str:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        outcome = self.outcomes[min(self.calls, len(self.outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_a_timeout_bounds_each_attempt() -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="resiliency timeout"):
        await resiliency().call_app("slow", Target(["ok"], delay=5.0))
    assert time.monotonic() - started < 2.0  # the 100 ms policy, not the 5 s call (a loaded CI
    # box once took 0.51 s here: the margin is for the machine, not for the code)


async def test_retries_repeat_transient_failures_only() -> None:
    flaky = Target([Unavailable("down"), Unavailable("down"), "ok"])
    assert await resiliency().call_app("flaky", flaky) == "ok" and flaky.calls == 3
    exhausted = Target([Unavailable("down")])
    with pytest.raises(Unavailable):
        await resiliency().call_app("flaky", exhausted)
    assert exhausted.calls == 4  # 1 + maxRetries 3
    final = Target([Internal("the app answered badly")])
    with pytest.raises(Internal):
        await resiliency().call_app("flaky", final)
    assert final.calls == 1


async def test_retries_stop_at_the_callers_deadline() -> None:
    forever = Resiliency(ResiliencyConfig.model_validate({
        "policies": {"retries": {"f": {"duration": "50ms"}}},
        "targets": {"apps": {"a": {"retry": "f"}}}}))
    target = Target([Unavailable("down")])
    with pytest.raises(Unavailable):
        await forever.call_app("a", target, deadline=time.monotonic() + 0.3)
    assert 3 <= target.calls <= 7


async def test_circuit_breaker_trips_fails_fast_then_recovers() -> None:
    policies = resiliency()
    breaker = policies.breaker("broken")
    assert breaker is not None
    down = Target([Unavailable("down")])
    for _ in range(2):
        with pytest.raises(Unavailable, match="down"):
            await policies.call_app("broken", down)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(Unavailable, match=r"circuit breaker .* is open"):
        await policies.call_app("broken", down)
    assert down.calls == 2  # the open breaker did not call the target
    await asyncio.sleep(0.25)
    assert await policies.call_app("broken", Target(["back"])) == "back"  # half-open probe
    assert breaker.state is BreakerState.CLOSED


async def test_a_failed_probe_opens_it_again() -> None:
    policies = resiliency()
    down = Target([Unavailable("down")])
    for _ in range(2):
        with pytest.raises(Unavailable):
            await policies.call_app("broken", down)
    await asyncio.sleep(0.25)
    with pytest.raises(Unavailable, match="down"):
        await policies.call_app("broken", down)
    breaker = policies.breaker("broken")
    assert breaker is not None and breaker.state is BreakerState.OPEN


async def test_apps_without_a_target_are_called_as_they_are() -> None:
    assert await resiliency().call_app("other", Target(["plain"])) == "plain"


def test_unknown_policy_names_are_configuration_errors() -> None:
    with pytest.raises(ValidationError, match="no policy named 'nope'"):
        ResiliencyConfig.model_validate({"targets": {"apps": {"a": {"retry": "nope"}}}})
