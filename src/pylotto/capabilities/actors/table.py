"""This sidecar's active actors (docs/design/actors.md §3, §4.1; daprd's pkg/actors/table).

An actor is activated by its first call or tick here (there is no app callback for
activation: the SDK makes its instance on the first call), once placement says this sidecar
owns it. With fencing on, activation claims the actor's state (state.py). Each active actor
has its :class:`~pylotto.capabilities.actors.turns.TurnLock` and an idle deadline that every
call and tick moves; an actor idle for its type's ``actorIdleTimeout`` (no turn running or
waiting) is deactivated: its turns close, then the app is told (``DELETE
/actors/<type>/<id>``). A call arriving while its actor is being deactivated waits for that to
end, then activates it afresh.

:meth:`ActorTable.halt` is placement's hook (a rebalance): the actors placement no longer
gives this sidecar are deactivated, after their ongoing turns when ``drain`` (bounded by the
type's ``drainOngoingCallTimeout``; a turn still running then is cancelled).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pylotto.capabilities.actors.api import (
    MOVED,
    ActorAnswer,
    ActorCall,
    ActorHost,
    ActorRef,
    EntityConfig,
    LocalActors,
    PlacementListener,
    StateOperation,
    Tick,
    TickOutcome,
)
from pylotto.capabilities.actors.state import ActorState, Fence, instance_missing
from pylotto.capabilities.actors.turns import TurnLock
from pylotto.core.errors import PylottoError, Unavailable
from pylotto.core.tasks import stop_tasks
from pylotto.observability.dapr_metrics import DaprMetrics

log = logging.getLogger("pylotto.actors")

DEACTIVATE_TIMEOUT = 30.0
"""The longest the app is waited for on a deactivation (calls to that actor id wait behind
it)."""


def moved(actor: ActorRef) -> Unavailable:
    """The answer for an actor this sidecar does not (or no longer) own."""
    return Unavailable(f"actor {actor.key} is not hosted on this sidecar (moved)",
                       where=MOVED, detail="actor moved", actor=actor.key)


@dataclass(eq=False)
class Active:
    """One activated actor."""

    ref: ActorRef
    host: ActorHost
    config: EntityConfig
    turns: TurnLock
    fence: Fence | None = None
    last_used: float = field(default_factory=time.monotonic)
    idle: asyncio.TimerHandle | None = None
    lost: bool = False
    """Its fencing record names another sidecar now: deactivate after this turn."""

    def touch(self) -> None:
        self.last_used = time.monotonic()


Hosting = Callable[[str], tuple[ActorHost, EntityConfig] | None]
"""Which host serves a type here, and its settings (None: not hosted here)."""


class ActorTable(LocalActors, PlacementListener):
    """The actors active here. ``hosting``: the hosted types; ``owns``: placement's verdict
    (checked before every turn); ``state``: the actor state (None: no store, no fencing);
    ``fencing``: claim each activation's state (docs/design/actors.md §4.1); ``metrics``:
    where deactivations and the calls waiting for a turn are counted (daprd's)."""

    def __init__(self, hosting: Hosting, owns: Callable[[ActorRef], bool], *,
                 state: ActorState | None = None, fencing: bool = True,
                 metrics: DaprMetrics | None = None) -> None:
        self._hosting = hosting
        self._owns = owns
        self.metrics = metrics if metrics is not None else DaprMetrics("")
        self.state = state
        self.fencing = fencing and state is not None
        self._active: dict[ActorRef, Active] = {}
        self._activating: dict[ActorRef, asyncio.Future[Active]] = {}
        self._deactivating: dict[ActorRef, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ---- views -------------------------------------------------------------------------------

    def is_active(self, actor: ActorRef) -> bool:
        return actor in self._active

    def get(self, actor: ActorRef) -> Active | None:
        return self._active.get(actor)

    def counts(self) -> dict[str, int]:
        """Active actors per type."""
        out: dict[str, int] = {}
        for ref in self._active:
            out[ref.type] = out.get(ref.type, 0) + 1
        return out

    def actors(self) -> list[ActorRef]:
        return list(self._active)

    # ---- activation --------------------------------------------------------------------------

    async def activate(self, actor: ActorRef) -> Active:
        """The active actor (activated now if needed); Unavailable at MOVED when this sidecar
        does not host its type or placement does not give it here."""
        while True:
            if self._closed:
                raise moved(actor)
            pending = self._deactivating.get(actor)
            if pending is not None:
                await asyncio.shield(pending)
                continue
            entry = self._active.get(actor)
            if entry is not None and not entry.turns.closed:
                return entry
            if entry is not None:  # closing, its deactivation task not yet there
                await asyncio.sleep(0)
                continue
            starting = self._activating.get(actor)
            if starting is not None:
                await asyncio.shield(starting)
                continue
            return await self._start(actor)

    async def _start(self, actor: ActorRef) -> Active:
        hosting = self._hosting(actor.type)
        if hosting is None or not self._owns(actor):
            raise moved(actor)
        host, config = hosting
        future: asyncio.Future[Active] = asyncio.get_running_loop().create_future()
        self._activating[actor] = future
        try:
            fence = None
            if self.fencing:
                assert self.state is not None
                fence = await self.state.fence(actor)
                if fence is None:
                    raise moved(actor)
            turns = TurnLock(config.reentrancy, actor.key,
                             functools.partial(self.metrics.actor_call_waiting, actor.type))
            entry = Active(actor, host, config, turns, fence=fence)
            self._active[actor] = entry
            self._arm_idle(entry)
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else moved(actor))
            future.exception()  # retrieved: waiters re-check and start again
            raise
        finally:
            del self._activating[actor]

    # ---- turns -------------------------------------------------------------------------------

    def joins(self, call: ActorCall) -> bool:
        """``call`` is a reentrant call of a turn running here: it runs here, whatever
        placement says meanwhile (its turn waits for it; a drain waits for its turn)."""
        entry = self._active.get(call.actor)
        return entry is not None and entry.turns.joinable(call.reentrancy_id)

    async def run(self, call: ActorCall) -> ActorAnswer:
        entry = self._active.get(call.actor)
        joined = entry is not None and entry.turns.joinable(call.reentrancy_id)
        if entry is None or not joined:
            entry = await self.activate(call.actor)
        async with entry.turns.turn(call.reentrancy_id) as reentrancy_id:
            if not joined:
                self._check_turn(entry)
            entry.touch()
            try:
                return await entry.host.invoke(call, reentrancy_id)
            finally:
                entry.touch()
                self._after_turn(entry)

    async def run_tick(self, tick: Tick) -> TickOutcome:
        entry = await self.activate(tick.actor)
        async with entry.turns.turn(None):
            self._check_turn(entry)
            entry.touch()
            try:
                return await entry.host.tick(tick)
            finally:
                entry.touch()
                self._after_turn(entry)

    def _check_turn(self, entry: Active) -> None:
        if entry.lost or not self._owns(entry.ref):
            self._deactivate_soon(entry)
            raise moved(entry.ref)

    def _after_turn(self, entry: Active) -> None:
        if entry.lost:
            self._deactivate_soon(entry)

    async def transact(self, actor: ActorRef, operations: list[StateOperation]) -> None:
        """A state transaction of ``actor``, which must be active here (NotFound at
        ``actors.instance`` otherwise, or when another sidecar took it: it is deactivated)."""
        if self.state is None:
            raise instance_missing(actor)
        entry = self._active.get(actor)  # a draining actor's last turn may still save
        if entry is None or entry.lost:
            raise instance_missing(actor)
        if not self.fencing:
            await self.state.transact(actor, operations)
            return
        if entry.fence is None:
            entry.lost = True
            raise instance_missing(actor, "the actor's fencing record is lost")
        try:
            entry.fence = await self.state.transact(actor, operations, entry.fence)
        except PylottoError as err:
            if err.where == "actors.instance":
                entry.lost = True
                if not entry.turns.busy:
                    self._deactivate_soon(entry)
            raise
        if entry.fence is None:
            entry.lost = True

    # ---- idle --------------------------------------------------------------------------------

    def _arm_idle(self, entry: Active, delay: float | None = None) -> None:
        if entry.idle is not None:
            entry.idle.cancel()
        wait = entry.config.idle_timeout if delay is None else delay
        if wait <= 0:
            entry.idle = None
            return
        entry.idle = asyncio.get_running_loop().call_later(wait, self._idle_check, entry)

    def _idle_check(self, entry: Active) -> None:
        entry.idle = None
        if self._active.get(entry.ref) is not entry or entry.turns.closed:
            return
        if entry.turns.busy:
            self._arm_idle(entry)
            return
        left = entry.last_used + entry.config.idle_timeout - time.monotonic()
        if left > 0.001:
            self._arm_idle(entry, left)
            return
        log.debug("actors: %s idle for %ss: deactivating", entry.ref.key,
                  entry.config.idle_timeout)
        self._deactivate_soon(entry)

    # ---- deactivation ------------------------------------------------------------------------

    def _deactivate_soon(self, entry: Active, *, drain: float | None = None
                         ) -> asyncio.Task[None]:
        """Close ``entry``'s turns and deactivate it in the background, after the turn
        running (bounded by ``drain`` seconds; None: the type's drain timeout)."""
        if drain is None:
            drain = entry.config.drain_ongoing_call_timeout
        running = self._deactivating.get(entry.ref)
        if running is not None:
            return running
        entry.turns.close()
        if entry.idle is not None:
            entry.idle.cancel()
            entry.idle = None
        self.metrics.actor_halted(entry.ref.type)
        task = asyncio.get_running_loop().create_task(self._deactivate(entry, drain),
                                                      name=f"actor-deactivate {entry.ref.key}")
        self._deactivating[entry.ref] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deactivate(self, entry: Active, drain: float) -> None:
        try:
            if entry.turns.busy and not await entry.turns.idle_within(drain):
                cancelled = entry.turns.cancel_running()
                log.warning("actors: %s: %d call(s) still running after the drain "
                            "timeout (%ss): cancelled", entry.ref.key, cancelled, drain)
                await entry.turns.idle_within(max(drain, 1.0))
            told = False
            try:
                async with asyncio.timeout(DEACTIVATE_TIMEOUT):
                    told = await entry.host.deactivate(entry.ref)
            except Exception:  # the host logs its own failures; never leave the actor stuck
                log.exception("actors: deactivating %s failed", entry.ref.key)
            self.metrics.actor_deactivated(entry.ref.type, told)
        finally:
            if self._active.get(entry.ref) is entry:
                del self._active[entry.ref]
            self._deactivating.pop(entry.ref, None)

    async def deactivate(self, actors: Iterable[ActorRef], drain: bool = False) -> None:
        """Deactivate ``actors`` (those active), waiting for their ongoing turns when
        ``drain`` (up to each type's drain timeout), and wait until done."""
        tasks = []
        for ref in actors:
            entry = self._active.get(ref)
            if entry is None:
                pending = self._deactivating.get(ref)
                if pending is not None:
                    tasks.append(pending)
                continue
            timeout = entry.config.drain_ongoing_call_timeout if drain else 0.0
            tasks.append(self._deactivate_soon(entry, drain=timeout))
        if tasks:
            await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)

    async def halt(self, keep: Callable[[ActorRef], bool], drain: bool) -> None:
        await self.deactivate([ref for ref in list(self._active) if not keep(ref)], drain)

    async def halt_types(self, types: Iterable[str], drain: bool = True) -> None:
        """Deactivate every actor of ``types`` (their host went away)."""
        gone = set(types)
        await self.halt(lambda ref: ref.type not in gone, drain)

    async def stop(self, drain: bool = True) -> None:
        """Deactivate everything (after the ongoing turns, up to the drain timeouts); no
        activation after."""
        self._closed = True
        await self.deactivate(list(self._active), drain)
        await stop_tasks(*self._tasks)

    def configs(self) -> Mapping[ActorRef, EntityConfig]:
        return {ref: entry.config for ref, entry in self._active.items()}
