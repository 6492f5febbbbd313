"""Turn-based concurrency of one actor (docs/design/actors.md §3; daprd's
pkg/actors/targets/app/lock): one call at a time, first come first served.

With reentrancy on, every call belongs to a *flight* named by its ``Dapr-Reentrancy-Id``: a
call without one starts a new flight under a fresh UUID (given to the app, which sends it back
on the calls it makes from inside the turn), a call whose id names a flight already queued or
running joins it (depth + 1; past the type's ``maxStackDepth`` it is refused with
ResourceExhausted at ``actors.stack_depth``). A flight holds the actor until its depth is
back to 0; then the next flight in line starts. With reentrancy off, every call is its own
flight and no id is given to the app.

:meth:`TurnLock.close` (deactivation) wakes the calls still waiting: they fail with
Unavailable at :data:`~pylotto.capabilities.actors.api.MOVED`, so the router places them again
(a fresh activation, here or elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pylotto.capabilities.actors.api import MOVED, Reentrancy
from pylotto.core.errors import ResourceExhausted, Unavailable


@dataclass(eq=False, slots=True)
class _Flight:
    id: str
    depth: int = 1
    started: asyncio.Event = field(default_factory=asyncio.Event)
    aborted: bool = False
    """Woken by :meth:`TurnLock.close` before its turn came: it never runs."""
    killed: bool = False
    """Its calls were cancelled by :meth:`TurnLock.cancel_running`."""
    tasks: set[asyncio.Task[object]] = field(default_factory=set)


def closed_error(what: str) -> Unavailable:
    return Unavailable(f"actor {what} is deactivated; placing the call again", where=MOVED,
                       detail="actor is closed")


def _not_told(delta: int) -> None:
    return None


class TurnLock:
    """The turns of one actor (``what``: its ``<type>||<id>``, for the errors; ``waiting``
    is told +1 when a call starts waiting for its turn and -1 once it has it or gave up, as
    daprd's lock reports its pending calls)."""

    def __init__(self, reentrancy: Reentrancy, what: str = "",
                 waiting: Callable[[int], None] = _not_told) -> None:
        self.reentrancy = reentrancy
        self.what = what
        self._waiting = waiting
        self._flights: deque[_Flight] = deque()
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        """A turn runs or waits."""
        return bool(self._flights)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def waiting(self) -> int:
        """Flights queued behind the running one."""
        return max(0, len(self._flights) - 1)

    @asynccontextmanager
    async def turn(self, reentrancy_id: str | None = None) -> AsyncIterator[str | None]:
        """Hold the actor for one call; yields the reentrancy id to hand to the app (None
        when reentrancy is off)."""
        if self._closed and not self.joinable(reentrancy_id):
            raise closed_error(self.what)
        self._waiting(1)
        try:
            flight = self._enter(reentrancy_id)
        except BaseException:
            self._waiting(-1)
            raise
        try:
            try:
                if not flight.started.is_set():
                    await flight.started.wait()
            finally:
                self._waiting(-1)
            if flight.aborted:
                raise closed_error(self.what)
            task = asyncio.current_task()
            if task is not None:
                flight.tasks.add(task)
            try:
                yield flight.id if self.reentrancy.enabled else None
            except asyncio.CancelledError:
                if flight.killed and task is not None and task.uncancel() == 0:
                    raise Unavailable(f"actor {self.what} was deactivated during the call",
                                      where="actors.invoke",
                                      detail="the call was cancelled: the actor was "
                                      "deactivated") from None
                raise
            finally:
                if task is not None:
                    flight.tasks.discard(task)
        finally:
            self._leave(flight)

    def joinable(self, reentrancy_id: str | None) -> bool:
        """A call with ``reentrancy_id`` would join the running turn (reentrancy on, and the
        id is the running flight's). Such a call is let in even while the lock closes: the
        turn it belongs to waits for it."""
        return (self.reentrancy.enabled and bool(reentrancy_id) and bool(self._flights)
                and self._flights[0].id == reentrancy_id and self._flights[0].started.is_set())

    def _enter(self, reentrancy_id: str | None) -> _Flight:
        if self.reentrancy.enabled and reentrancy_id and self._flights:
            for flight in self._flights:
                if flight.id == reentrancy_id:
                    if flight.depth + 1 > self.reentrancy.max_stack_depth:
                        raise ResourceExhausted("maximum stack depth exceeded",
                                                where="actors.stack_depth",
                                                detail="maximum stack depth exceeded")
                    flight.depth += 1
                    return flight
        if not self.reentrancy.enabled:
            flight = _Flight("")  # never joined: no id needed
        else:
            flight = _Flight(reentrancy_id or str(uuid.uuid4()))
        if not self._flights:
            flight.started.set()
        self._flights.append(flight)
        self._idle.clear()
        return flight

    def _leave(self, flight: _Flight) -> None:
        flight.depth -= 1
        if flight.depth > 0:
            return
        was_front = bool(self._flights) and self._flights[0] is flight
        with contextlib.suppress(ValueError):
            self._flights.remove(flight)
        if was_front and self._flights:
            self._flights[0].started.set()
        if not self._flights:
            self._idle.set()

    async def idle_within(self, seconds: float) -> bool:
        """Wait (up to ``seconds``) until no turn runs or waits; True if so."""
        if self._idle.is_set():
            return True
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        """No new turn from now on; the calls waiting in line are woken and fail (Unavailable
        at MOVED). A running turn goes on, reentrant calls of it included (see
        :meth:`cancel_running`)."""
        self._closed = True
        for flight in list(self._flights)[1:]:
            flight.aborted = True
            flight.started.set()

    def cancel_running(self) -> int:
        """Cancel the calls of the running turn (a drain that timed out); their number."""
        count = 0
        for flight in list(self._flights):
            flight.killed = True
            for task in list(flight.tasks):
                task.cancel()
                count += 1
        return count
