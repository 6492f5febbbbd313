"""The inbound policy of a pubsub (targets.components.<name>.inbound): deliveries to the app
retried on every failure, as Dapr's runner does, but for the kinds said to be permanent."""

from __future__ import annotations

import asyncio

import pytest

from pylotto.core.errors import ConfigError, DeadlineExceeded, Unsupported
from pylotto.core.resiliency import Resiliency, ResiliencyConfig


def inbound(**target: str) -> Resiliency:
    return Resiliency(ResiliencyConfig.model_validate({
        "policies": {"retries": {"r": {"duration": "1ms", "maxRetries": 2}},
                     "timeouts": {"t": "50ms"}},
        "targets": {"components": {"bus": {"inbound": target}}}}))


class Refusal(Exception):
    pass


async def test_every_failure_is_retried_up_to_the_policy() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise Refusal("RETRY")  # not a pylotto error: an outbound policy would not retry it

    with pytest.raises(Refusal):
        await inbound(retry="r").call_inbound("bus", attempt)
    assert calls == 3


async def test_permanent_failures_are_not_retried() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise Unsupported("no handler")

    with pytest.raises(Unsupported):
        await inbound(retry="r").call_inbound("bus", attempt, permanent=(Unsupported,))
    assert calls == 1


async def test_a_timeout_bounds_each_attempt() -> None:
    async def slow() -> None:
        await asyncio.sleep(1)

    with pytest.raises(DeadlineExceeded, match="resiliency timeout"):
        await inbound(timeout="t").call_inbound("bus", slow)


async def test_no_inbound_policy_is_one_attempt_and_outbound_is_apart() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise Refusal("RETRY")

    resiliency = Resiliency(ResiliencyConfig.model_validate({
        "policies": {"retries": {"r": {"duration": "1ms", "maxRetries": 2}}},
        "targets": {"components": {"bus": {"outbound": {"retry": "r"}}}}}))
    assert not resiliency.has_inbound("bus")
    with pytest.raises(Refusal):
        await resiliency.call_inbound("bus", attempt)
    assert calls == 1


def test_an_unknown_inbound_policy_name_is_refused() -> None:
    with pytest.raises((ValueError, ConfigError), match=r"inbound\.retry"):
        ResiliencyConfig.model_validate({
            "targets": {"components": {"bus": {"inbound": {"retry": "nope"}}}}})
