"""Local or forward: every actor call and tick goes through here (docs/design/actors.md §4.1
"Forwarding"; daprd's pkg/actors/router).

``placement.locate(actor)`` says where the actor lives: here → :class:`LocalActors` (the
table) runs it in a turn; another sidecar → :class:`Forwarder` sends it there, marked
``forwarded``. A "moved" answer (Unavailable at :data:`MOVED`: the actor left, or its place is
being handed over) or an unreachable sidecar makes the router locate again and retry, 5 times
1 s apart (daprd's ``DaprBuiltInActorNotFoundRetries``); so does a type no member hosts (yet).
A resiliency policy named ``DaprBuiltInActorNotFoundRetries`` replaces those retries, as in
daprd (``maxRetries: 0``: answer at once). A call that was forwarded to this sidecar is
never forwarded again: it runs here or answers "moved", and the sidecar it came from retries.
A reentrant call of a turn running here runs here, whatever placement says meanwhile (a drain
waits for that turn, which waits for it).

Ticks (reminders, timers) come from the scheduler or the in-memory timers, which have their
own retries: :meth:`Router.fire` tries fewer times and answers ``delivered=False`` instead of
raising.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import replace

from pylotto.capabilities.actors.api import (
    MOVED,
    ActorAnswer,
    ActorCall,
    ActorRef,
    Forwarder,
    LocalActors,
    Placement,
    Tick,
    TickOutcome,
)
from pylotto.core.errors import NotFound, PylottoError, Unavailable
from pylotto.core.resiliency import RetryPolicy

log = logging.getLogger("pylotto.actors")

RETRIES = 5
RETRY_INTERVAL = 1.0
TICK_ATTEMPTS = 2
TICK_RETRY_INTERVAL = 0.2


def no_address(actor: ActorRef) -> NotFound:
    """What placement answers for an actor no member hosts (daprd's ``ErrActorNoAddress``)."""
    text = f"did not find address for actor '{actor.key}'"
    return NotFound(text, where="actors.invoke", detail=text, actor=actor.key)


def _lookup_failed(actor: ActorRef, err: PylottoError) -> NotFound:
    detail = f"failed to lookup actor: {err.message}"
    return NotFound(f"error invoke actor method: {detail}", where="actors.invoke",
                    detail=detail, actor=actor.key)


class _Retry(Exception):
    """One attempt failed in a way the router retries."""

    def __init__(self, err: PylottoError, *, lookup: bool = False,
                 at_once: bool = False) -> None:
        super().__init__(err.message)
        self.err, self.lookup = err, lookup
        self.at_once = at_once
        """The first retry need not wait: the actor was being deactivated here (the table
        waits for that itself) or placement just took it from this sidecar."""


class Router:
    """Routes calls and ticks by ``placement`` to ``local`` or through ``forwarder`` (None:
    one sidecar, nothing to forward to)."""

    def __init__(self, placement: Placement, local: LocalActors,
                 forwarder: Forwarder | None = None, *, retries: int = RETRIES,
                 retry_interval: float = RETRY_INTERVAL, tick_attempts: int = TICK_ATTEMPTS,
                 tick_retry_interval: float = TICK_RETRY_INTERVAL,
                 joins: Callable[[ActorCall], bool] | None = None,
                 retry_policy: RetryPolicy | None = None) -> None:
        """``joins``: whether a call is a reentrant call of a turn running here (the table's
        ``joins``): it runs here without asking placement. ``retry_policy``: the user's
        ``DaprBuiltInActorNotFoundRetries``, in place of ``retries`` x ``retry_interval``."""
        self.placement, self.local, self.forwarder = placement, local, forwarder
        self.joins = joins
        self.retries, self.retry_interval = retries, retry_interval
        self._delay: Callable[[int], float] = lambda retry: self.retry_interval
        if retry_policy is not None:
            self.retries = sys.maxsize if retry_policy.max_retries < 0 else (
                retry_policy.max_retries)
            self._delay = retry_policy.delay
        self.tick_attempts, self.tick_retry_interval = tick_attempts, tick_retry_interval

    async def call(self, call: ActorCall) -> ActorAnswer:
        """Run ``call`` where its actor lives (retrying "moved" as daprd does)."""
        if self.joins is not None and call.reentrancy_id and self.joins(call):
            return await self.local.run(call)
        if call.forwarded:
            return await self._forwarded(call)
        attempt = 0
        while True:
            try:
                return await self._once(call)
            except _Retry as retry:
                if attempt >= self.retries:
                    if retry.lookup:
                        raise _lookup_failed(call.actor, retry.err) from retry.err
                    detail = f"failed to invoke actor {call.actor.key}: {retry.err.message}"
                    raise Unavailable(f"error invoke actor method: {detail}", where=MOVED,
                                      detail=detail, actor=call.actor.key) from retry.err
                if attempt or not retry.at_once:
                    await asyncio.sleep(self._delay(attempt + 1))
            attempt += 1

    async def _once(self, call: ActorCall) -> ActorAnswer:
        try:
            location = await self.placement.locate(call.actor)
        except NotFound as err:
            raise _Retry(err, lookup=True) from err
        if location.local:
            try:
                return await self.local.run(call)
            except Unavailable as err:
                if err.where == MOVED:
                    raise _Retry(err, at_once=True) from err
                raise
        if self.forwarder is None:
            raise _Retry(Unavailable(f"actor {call.actor.key} lives on {location.address}, "
                                     "and this sidecar cannot forward calls", where=MOVED))
        try:
            return await self.forwarder.call(location.address, replace(call, forwarded=True))
        except Unavailable as err:
            if err.where == "actors.closed":
                raise
            raise _Retry(err) from err

    async def _forwarded(self, call: ActorCall) -> ActorAnswer:
        """A call another sidecar forwarded: here or "moved", never further."""
        try:
            location = await self.placement.locate(call.actor)
        except NotFound as err:
            raise Unavailable(f"actor {call.actor.key}: {err.message}", where=MOVED,
                              detail="actor moved", actor=call.actor.key) from err
        if not location.local:
            raise Unavailable(f"actor {call.actor.key} is not hosted on this sidecar (moved)",
                              where=MOVED, detail="actor moved", actor=call.actor.key)
        return await self.local.run(call)

    async def fire(self, tick: Tick) -> TickOutcome:
        """The :data:`~pylotto.capabilities.actors.api.TickSink` of timers and reminders:
        ``tick`` delivered to its actor wherever it lives; ``delivered=False`` when it could
        not be (the caller retries later)."""
        for attempt in range(max(1, self.tick_attempts)):
            if attempt:
                await asyncio.sleep(self.tick_retry_interval)
            try:
                location = await self.placement.locate(tick.actor)
                if location.local:
                    return await self.local.run_tick(tick)
                if self.forwarder is None:
                    return TickOutcome(delivered=False)
                return await self.forwarder.fire(location.address, tick)
            except (Unavailable, NotFound) as err:
                log.debug("actors: %s %s of %s not delivered: %s", tick.kind.value, tick.name,
                          tick.actor.key, err.message)
            except PylottoError as err:
                log.warning("actors: %s %s of %s failed: %s", tick.kind.value, tick.name,
                            tick.actor.key, err.message)
                return TickOutcome(delivered=False)
        return TickOutcome(delivered=False)
