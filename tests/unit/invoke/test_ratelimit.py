"""Token buckets per API and per caller."""

from __future__ import annotations

import time

import pytest

from pylotto.core.errors import ResourceExhausted
from pylotto.security.ratelimit import RateLimiter, RateRule


def admitted(limiter: RateLimiter, api: str, caller: str, calls: int) -> int:
    count = 0
    for _ in range(calls):
        try:
            limiter.admit(api, caller)
            count += 1
        except ResourceExhausted:
            pass
    return count


def test_burst_then_refusal_then_refill() -> None:
    limiter = RateLimiter([RateRule(api="SaveState", rate=20, burst=5)])
    assert admitted(limiter, "SaveState", "app", 10) == 5
    assert admitted(limiter, "GetState", "app", 10) == 10  # another API: no rule
    time.sleep(0.11)  # 20/s refills about 2 tokens
    assert admitted(limiter, "SaveState", "app", 10) == 2


def test_buckets_are_per_caller_and_rules_are_globs() -> None:
    limiter = RateLimiter([RateRule(api="Invoke*", caller="front*", rate=3)])
    assert admitted(limiter, "InvokeService", "frontend", 5) == 3
    assert admitted(limiter, "InvokeService", "frontoffice", 5) == 3  # its own bucket
    assert admitted(limiter, "InvokeService", "billing", 5) == 5      # not matched


def test_the_refusal_says_what_is_limited() -> None:
    limiter = RateLimiter([RateRule(rate=1)])
    limiter.admit("GetState", "app")
    with pytest.raises(ResourceExhausted, match=r"GetState from app 'app' is limited to 1/s"):
        limiter.admit("GetState", "app")


def test_a_layotto_rule_refuses_as_mosn_does() -> None:
    import grpc

    from pylotto.core.errors import PlainError, grpc_code

    limiter = RateLimiter([RateRule(api="SayHello", rate=1, refusal="layotto")])
    limiter.admit("SayHello", "app")
    with pytest.raises(PlainError) as refused:
        limiter.admit("SayHello", "app")
    assert refused.value.message == "current request is limited"
    assert grpc_code(refused.value) is grpc.StatusCode.UNKNOWN


def test_a_window_rule_admits_its_count_per_second_however_slowly_they_come(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pylotto.security.ratelimit as ratelimit

    now = [100.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    window = RateLimiter([RateRule(api="SayHello", rate=5, counting="window")])
    bucket = RateLimiter([RateRule(api="SayHello", rate=5)])
    answers = {"window": 0, "bucket": 0}
    for _ in range(10):  # 10 calls 90 ms apart: a bucket refills meanwhile, a window does not
        for name, limiter in (("window", window), ("bucket", bucket)):
            try:
                limiter.admit("SayHello", "app")
                answers[name] += 1
            except ResourceExhausted:
                pass
        now[0] += 0.09
    assert answers == {"window": 5, "bucket": 9}
    now[0] += 1.0
    window.admit("SayHello", "app")  # a new second
