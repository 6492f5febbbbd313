"""Retrying calls that failed for a passing reason (the sidecar restarting, a backend away).

Only calls that are safe to repeat are retried by default: reading, and writes whose second
application changes nothing (saving a value, deleting a key, unlocking). Publishing an event,
invoking a service or a binding, taking a lock or running a transaction could happen twice,
so they are retried only with ``RetryPolicy(non_idempotent=True)``.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from pylotto.client.types import ClientError

T = TypeVar("T")

IDEMPOTENT = frozenset({
    "SayHello", "GetState", "GetBulkState", "QueryState", "SaveState", "DeleteState",
    "DeleteBulkState", "GetConfiguration", "SaveConfiguration", "DeleteConfiguration",
    "GetSecret", "GetBulkSecret", "ListFile", "GetFileMeta", "DelFile", "Unlock",
    "LockKeepAlive", "GetNextId",
})
"""RPCs retried by default. GetNextId is here because a repeated call only skips an id (ids
stay unique and increasing)."""


def _default_attempts() -> int:
    """``DAPR_API_MAX_RETRIES`` (Dapr's SDK's variable) when set, else 3."""
    value = os.environ.get("DAPR_API_MAX_RETRIES", "")
    return max(1, int(value)) if value.strip().isdigit() else 3


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` calls at most (1: no retry), waiting ``initial_backoff`` seconds after
    the first failure, then ``multiplier`` times longer each time up to ``max_backoff``, each
    wait shortened by a random jitter of up to half; only for ``codes``."""

    max_attempts: int = field(default_factory=_default_attempts)
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    codes: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE})
    non_idempotent: bool = False
    """Also retry calls that may take effect twice (publish, invoke, try_lock...)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ValueError("backoffs must satisfy 0 <= initial_backoff <= max_backoff")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 for the first retry)."""
        full = min(self.max_backoff, self.initial_backoff * self.multiplier ** retry)
        return full * (1 - random.random() / 2)

    async def run(self, rpc: str, attempt: Callable[[], Awaitable[T]],
                  idempotent: bool | None = None) -> T:
        """``attempt()`` until it succeeds, fails with a code not retried, or runs out of
        attempts (the last ClientError is raised). ``idempotent``: whether this call may be
        repeated (default: whether ``rpc`` may be, :data:`IDEMPOTENT`)."""
        safe = rpc in IDEMPOTENT if idempotent is None else idempotent
        attempts = self.max_attempts if safe or self.non_idempotent else 1
        for retry in range(attempts):
            try:
                return await attempt()
            except ClientError as err:
                if err.code not in self.codes or retry == attempts - 1:
                    raise
            await asyncio.sleep(self.backoff(retry))
        raise AssertionError("not reached")


NO_RETRY = RetryPolicy(max_attempts=1)
