"""Rate limiting (Layotto's flow control): token buckets per API and per caller.

    rate_limits:
    - {api: SaveState, rate: 100}               # 100 calls/s from this sidecar's app
    - {api: InvokeService, caller: frontend, rate: 5, burst: 10}
    - {api: "*", rate: 1000}

``api`` is an RPC name (``GetState``, ``PublishEvent``, ``InvokeService``...; ``*`` and other
globs allowed), the same for the gRPC and the HTTP API. ``caller`` is the calling app: this
sidecar's own app for its API calls, the calling app's id for invocations arriving from other
sidecars (``*``: any). Each rule keeps one bucket per (api, caller) it matches: ``burst`` calls
at once (default: the rate, at least 1), refilled at ``rate`` per second. A call no bucket has a
token for does not run; it is refused as the rule's ``refusal`` says:

- ``pylotto`` (the default): RESOURCE_EXHAUSTED / 429 "rate limit exceeded: ...";
- ``layotto``: as MOSN's flowControlFilter refuses it in Layotto — a bare error that grpc-go
  answers UNKNOWN "current request is limited". The rules read from a Layotto config's
  ``flowControlFilter`` carry it, so a Layotto client sees what Layotto sends.
"""

from __future__ import annotations

import collections
import fnmatch
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pylotto.core.errors import PlainError, PylottoError, ResourceExhausted

MOSN_REFUSAL = "current request is limited"
"""The text of MOSN's flow-control refusal (its filter's default response body)."""


class RateRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api: str = "*"
    caller: str = "*"
    rate: float = Field(gt=0)
    burst: int | None = Field(None, ge=1)
    refusal: Literal["pylotto", "layotto"] = "pylotto"
    counting: Literal["token_bucket", "window"] = "token_bucket"
    """``token_bucket``: ``burst`` at once, refilled at ``rate`` per second. ``window``: at most
    ``rate`` calls in any one second (Sentinel's QPS rule, which MOSN's flowControlFilter
    applies: Layotto's 5/s admits 5 calls however quickly 10 come, never a 6th refilled
    meanwhile)."""

    def refuse(self, api: str, caller: str) -> PylottoError:
        """The error a call this rule refused ends with."""
        if self.refusal == "layotto":
            return PlainError(MOSN_REFUSAL)
        who = f" from app {caller!r}" if caller else ""
        return ResourceExhausted(f"rate limit exceeded: {api}{who} is limited to "
                                 f"{self.rate:g}/s")


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class _Window:
    """At most ``limit`` admissions in the last second (a log of their times)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: collections.deque[float] = collections.deque()

    def take(self) -> bool:
        now = time.monotonic()
        while self.times and now - self.times[0] >= 1.0:
            self.times.popleft()
        if len(self.times) < self.limit:
            self.times.append(now)
            return True
        return False


class RateLimiter:
    def __init__(self, rules: list[RateRule]) -> None:
        self.rules = rules
        self._buckets: dict[tuple[int, str, str], _Bucket | _Window] = {}

    def admit(self, api: str, caller: str) -> None:
        """Take a token from every matching rule's bucket, or raise the refusal of the first
        rule that has none."""
        for index, rule in enumerate(self.rules):
            if not (fnmatch.fnmatchcase(api, rule.api)
                    and fnmatch.fnmatchcase(caller, rule.caller)):
                continue
            key = (index, api, caller)
            bucket = self._buckets.get(key)
            if bucket is None:
                limit = rule.burst or max(1, int(rule.rate))
                bucket = self._buckets[key] = (
                    _Window(limit) if rule.counting == "window" else _Bucket(rule.rate, limit))
            if not bucket.take():
                raise rule.refuse(api, caller)
