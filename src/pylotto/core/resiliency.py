"""Resiliency policies in Dapr's format: timeouts, retries and circuit breakers for calls to
other apps (service invocation) and to components (state, lock, sequencer, configuration,
secrets, bindings, pub/sub publish).

    resiliency:                     # in pylotto.yaml (Dapr's kind: Resiliency spec, as is)
      policies:
        timeouts:
          general: 5s
        retries:
          important: {policy: exponential, maxInterval: 2s, maxRetries: 3}
        circuitBreakers:
          simple: {maxRequests: 1, timeout: 30s, trip: consecutiveFailures >= 5}
      targets:
        apps:
          billing: {timeout: general, retry: important, circuitBreaker: simple}
        components:
          statestore: {outbound: {timeout: general, retry: important}}

- A **timeout** bounds one attempt.
- A **retry** repeats an attempt that failed with UNAVAILABLE or DEADLINE_EXCEEDED (the target
  or its sidecar is down or slow; an app that answered, whatever its status, is not retried):
  ``policy`` ``constant`` (``duration``, default 5s, between attempts) or ``exponential``
  (``initialInterval`` 500ms doubling up to ``maxInterval``, default 60s); ``maxRetries``
  (default -1: forever, within the caller's deadline; 0: none).
- A **circuit breaker** counts failures per target app. When ``trip`` (a CEL expression over
  ``consecutiveFailures``, ``requests`` and ``totalFailures``; default ``consecutiveFailures >
  5``) holds, it opens: calls fail at once with UNAVAILABLE for ``timeout`` (default 60s). Then it
  lets ``maxRequests`` (default 1) calls through (half-open): a success closes it, a failure
  opens it again. ``interval`` (default 0: never) clears the counts periodically while closed.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pylotto.core.errors import ConfigError, DeadlineExceeded, PylottoError, Unavailable
from pylotto.core.metadata import Duration

log = logging.getLogger("pylotto.resiliency")
T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryPolicy(_Model):
    policy: Literal["constant", "exponential"] = "constant"
    duration: Duration = 5.0
    initial_interval: Duration = Field(0.5, alias="initialInterval")
    max_interval: Duration = Field(60.0, alias="maxInterval")
    max_retries: int = Field(-1, alias="maxRetries", ge=-1)

    def delay(self, retry: int) -> float:
        if self.policy == "constant":
            return self.duration
        return float(min(self.initial_interval * 2 ** (retry - 1), self.max_interval))


ACTOR_NOT_FOUND_RETRIES = "DaprBuiltInActorNotFoundRetries"
"""daprd's built-in retry policy of an actor call whose actor has no address (yet): 5 x 1 s,
constant; a retry policy of this name in ``policies.retries`` replaces it, as in Dapr."""


class BreakerPolicy(_Model):
    max_requests: int = Field(1, alias="maxRequests", ge=1)
    interval: Duration = 0.0
    timeout: Duration = 60.0
    trip: str = "consecutiveFailures > 5"


class Policies(_Model):
    timeouts: dict[str, Duration] = Field(default_factory=dict)
    retries: dict[str, RetryPolicy] = Field(default_factory=dict)
    circuit_breakers: dict[str, BreakerPolicy] = Field(default_factory=dict,
                                                       alias="circuitBreakers")


class TargetPolicy(_Model):
    timeout: str = ""
    retry: str = ""
    circuit_breaker: str = Field("", alias="circuitBreaker")


class ComponentTarget(_Model):
    outbound: TargetPolicy = Field(default_factory=TargetPolicy)
    inbound: TargetPolicy = Field(default_factory=TargetPolicy)
    """Pub/sub deliveries to the app (``call_inbound``): every failed attempt is retried, as
    in Dapr; with no inbound policy a delivery is attempted once before it is dead-lettered
    (or, without a dead-letter topic, handed back to the broker for its ``backOff*``)."""


class Targets(_Model):
    apps: dict[str, TargetPolicy] = Field(default_factory=dict)
    components: dict[str, ComponentTarget] = Field(default_factory=dict)

    def policies(self) -> list[tuple[str, TargetPolicy]]:
        """(where, policy) of every target, for checks and breakers."""
        return [*((f"apps.{n}", p) for n, p in self.apps.items()),
                *((f"components.{n}.outbound", c.outbound)
                  for n, c in self.components.items()),
                *((f"components.{n}.inbound", c.inbound)
                  for n, c in self.components.items())]


class ResiliencyConfig(_Model):
    policies: Policies = Field(default_factory=Policies)
    targets: Targets = Field(default_factory=Targets)

    @field_validator("targets")
    @classmethod
    def _known_names(cls, targets: Targets, info: Any) -> Targets:
        policies: Policies | None = info.data.get("policies")
        if policies is None:
            return targets
        for where, target in targets.policies():
            for kind, name, known in (("timeout", target.timeout, policies.timeouts),
                                      ("retry", target.retry, policies.retries),
                                      ("circuitBreaker", target.circuit_breaker,
                                       policies.circuit_breakers)):
                if name and name not in known:
                    raise ValueError(f"targets.{where}.{kind}: no policy named {name!r}")
        return targets


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(self, name: str, policy: BreakerPolicy) -> None:
        import celpy

        self.name = name
        self.policy = policy
        env = celpy.Environment()
        try:
            self._trip: Any = env.program(env.compile(policy.trip))
        except Exception as exc:
            raise ConfigError(f"circuit breaker {name}: trip {policy.trip!r} is not a valid "
                              f"CEL expression: {exc}") from None
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.requests = 0
        self.total_failures = 0
        self._opened_at = 0.0
        self._counted_since = time.monotonic()
        self._probes = 0

    def admit(self) -> None:
        """Raise Unavailable while open; move to half-open after the timeout."""
        now = time.monotonic()
        if self.state is BreakerState.OPEN:
            if now - self._opened_at < self.policy.timeout:
                raise Unavailable(f"circuit breaker {self.name} is open")
            self.state, self._probes = BreakerState.HALF_OPEN, 0
            log.info("circuit breaker %s half-open", self.name)
        if self.state is BreakerState.HALF_OPEN:
            if self._probes >= self.policy.max_requests:
                raise Unavailable(f"circuit breaker {self.name} is half-open and busy")
            self._probes += 1
        elif self.policy.interval and now - self._counted_since >= self.policy.interval:
            self.requests = self.total_failures = self.consecutive_failures = 0
            self._counted_since = now

    def record(self, failed: bool) -> None:
        self.requests += 1
        if not failed:
            self.consecutive_failures = 0
            if self.state is BreakerState.HALF_OPEN:
                self.state = BreakerState.CLOSED
                self.requests = self.total_failures = 0
                log.info("circuit breaker %s closed", self.name)
            return
        self.consecutive_failures += 1
        self.total_failures += 1
        if self.state is BreakerState.HALF_OPEN or self._tripped():
            self.state, self._opened_at = BreakerState.OPEN, time.monotonic()
            log.warning("circuit breaker %s open for %.0fs", self.name, self.policy.timeout)

    def _tripped(self) -> bool:
        from celpy.adapter import json_to_cel

        activation = json_to_cel({"consecutiveFailures": self.consecutive_failures,
                                  "requests": self.requests,
                                  "totalFailures": self.total_failures})
        try:
            return bool(self._trip.evaluate(activation))
        except Exception as exc:
            log.warning("circuit breaker %s: trip expression failed: %s", self.name, exc)
            return False


_TRANSIENT = (Unavailable, DeadlineExceeded)


class Resiliency:
    """Applies the configured policies to calls to other apps and to components."""

    def __init__(self, config: ResiliencyConfig | None) -> None:
        self.config = config or ResiliencyConfig()
        self._targets: dict[tuple[str, str], TargetPolicy] = {}
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        targets = self.config.targets
        for kind, name, target in [
            *(("app", n, p) for n, p in targets.apps.items()),
            *(("component", n, c.outbound) for n, c in targets.components.items()),
            *(("inbound", n, c.inbound) for n, c in targets.components.items()
              if c.inbound != TargetPolicy()),
        ]:
            self._targets[(kind, name)] = target
            if target.circuit_breaker:
                self._breakers[(kind, name)] = CircuitBreaker(
                    f"{target.circuit_breaker} ({kind} {name})",
                    self.config.policies.circuit_breakers[target.circuit_breaker])

    def breaker(self, app_id: str, kind: str = "app") -> CircuitBreaker | None:
        return self._breakers.get((kind, app_id))

    async def call_app(self, app_id: str, attempt: Callable[[float | None], Awaitable[T]],
                       deadline: float | None = None) -> T:
        """Run ``attempt(timeout)`` under the app's policies; ``deadline`` (monotonic time) is
        the caller's, never exceeded."""
        return await self._call("app", app_id, attempt, deadline)

    async def call_component(self, name: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run a call to component ``name`` under its outbound policies (as it is when it
        has none)."""
        if ("component", name) not in self._targets:
            return await attempt()
        return await self._call("component", name, lambda _limit: attempt(), None)

    def has_inbound(self, name: str) -> bool:
        """True when component ``name`` has an inbound policy."""
        return ("inbound", name) in self._targets

    async def call_inbound(self, name: str, attempt: Callable[[], Awaitable[T]],
                           permanent: tuple[type[Exception], ...] = ()) -> T:
        """Run a delivery from component ``name`` to the app under its inbound policies:
        unlike outbound calls, every failure (an error, a RETRY verdict) but those of the
        ``permanent`` types is retried."""
        if ("inbound", name) not in self._targets:
            return await attempt()
        return await self._call("inbound", name, lambda _limit: attempt(), None,
                                retry_all=True, permanent=permanent)

    async def _call(self, kind: str, name: str,
                    attempt: Callable[[float | None], Awaitable[T]],
                    deadline: float | None, *, retry_all: bool = False,
                    permanent: tuple[type[Exception], ...] = ()) -> T:
        app_id = f"{kind} {name}"
        target = self._targets.get((kind, name))
        if target is None:
            return await attempt(None)
        policies = self.config.policies
        timeout = policies.timeouts.get(target.timeout) if target.timeout else None
        retry = policies.retries.get(target.retry) if target.retry else None
        breaker = self._breakers.get((kind, name))
        retries = 0
        while True:
            if breaker is not None:
                breaker.admit()
            left = None if deadline is None else deadline - time.monotonic()
            limit = min(x for x in (timeout, left) if x is not None) \
                if timeout is not None or left is not None else None
            if limit is not None and limit <= 0:
                raise DeadlineExceeded(f"{app_id}: the caller's deadline passed")
            try:
                if limit is None:
                    result = await attempt(None)
                else:
                    async with asyncio.timeout(limit):
                        result = await attempt(limit)
            except Exception as exc:
                if isinstance(exc, permanent) or (
                        not retry_all and not isinstance(exc, TimeoutError | PylottoError)):
                    raise
                error: Exception = exc
                if isinstance(exc, TimeoutError) and limit is not None:
                    error = DeadlineExceeded(
                        f"{app_id}: no answer within {limit:.3f}s (resiliency timeout)")
                transient = retry_all or isinstance(error, _TRANSIENT)
                if breaker is not None:
                    breaker.record(failed=transient)
                retries += 1
                pause = retry.delay(retries) if retry is not None else 0.0
                if (not transient or retry is None or 0 <= retry.max_retries < retries
                        or (deadline is not None and time.monotonic() + pause >= deadline)):
                    if error is exc:
                        raise
                    raise error from exc
                log.debug("%s: retry %d in %.2fs: %s", app_id, retries, pause,
                          error.message if isinstance(error, PylottoError) else repr(error))
                await asyncio.sleep(pause)
                continue
            if breaker is not None:
                breaker.record(failed=False)
            return result
