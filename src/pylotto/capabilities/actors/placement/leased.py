""":class:`LeasedPlacement`: the :class:`Placement` of a sidecar among the other sidecars of
its app id, over the actor state store (docs/design/actors.md §4.1).

Two loops run while the sidecar does:

- **renew**, every ``lease/3``: this member's entry in the member document, then every
  partition lease it holds (one transaction). It never waits for a rebalance, so a slow
  drain cannot make the leases lapse.
- **poll**, every ``poll_seconds``: re-read the member document, recompute each hosted type's
  ring, give up the partitions the ring now names another member for (no new turns at once,
  then :meth:`PlacementListener.halt` with the drain flag, then release), and take the free
  or expired partitions it names this member for. A lease that lapsed (the store could not
  be reached in time) or was found taken halts its actors without a drain.

:meth:`locate` answers from the ring; for a partition the ring gives this sidecar that is not
leased here yet (being handed over), it waits for the lease, up to
``handover_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from pylotto.capabilities.actors.api import (
    MOVED,
    ActorRef,
    EntityConfig,
    Location,
    Placement,
    PlacementListener,
)
from pylotto.capabilities.actors.placement.clock import Clock, SystemClock
from pylotto.capabilities.actors.placement.leases import Leases
from pylotto.capabilities.actors.placement.membership import Members, Membership, hosting
from pylotto.capabilities.actors.placement.ring import Ring, partition, partition_key
from pylotto.capabilities.actors.router import no_address
from pylotto.capabilities.state import StateCapability
from pylotto.config.model import ActorsConfig
from pylotto.core.errors import PylottoError, Unavailable
from pylotto.core.tasks import stop_task, stop_tasks
from pylotto.observability.dapr_metrics import DaprMetrics

log = logging.getLogger("pylotto.actors.placement")


class LeasedPlacement(Placement):
    """Member ``address`` (the internal gRPC address other sidecars forward calls to) of app
    ``app_id``'s actors, with its member document and leases in state store ``store``;
    ``metrics``: where its reports (member entry renewals) and the placement tables it reads
    are counted, as daprd counts its placement stream's."""

    def __init__(self, state: StateCapability, store: str, app_id: str, address: str,
                 config: ActorsConfig | None = None, clock: Clock | None = None,
                 metrics: DaprMetrics | None = None) -> None:
        self.metrics = metrics if metrics is not None else DaprMetrics(app_id)
        self.config = config or ActorsConfig()
        self.clock: Clock = clock or SystemClock()
        self.address = address
        lease = self.config.lease_seconds
        self.membership = Membership(state, store, app_id, address, lease, self.clock)
        self.leases = Leases(state, store, app_id, address, lease=lease,
                             skew=self.config.clock_skew_seconds, clock=self.clock)
        self.hosted: frozenset[str] = frozenset()
        self.listener: PlacementListener | None = None
        self._members: Members = {}
        self._rings: dict[str, Ring] = {}
        self._releasing: set[str] = set()
        self._lapsed: set[str] = set()
        self._stopping = False
        self._started = False
        self._ready = False
        self._joined = False
        self._last_contact: float | None = None
        self._changed = asyncio.Event()
        self._renewing: asyncio.Task[None] | None = None
        self._polling_task: asyncio.Task[None] | None = None
        self._halts: set[asyncio.Task[None]] = set()
        self._polling = asyncio.Lock()

    # ---- the Placement contract ------------------------------------------------------------

    async def start(self, hosted: Mapping[str, EntityConfig],
                    listener: PlacementListener) -> None:
        self.listener = listener
        self.hosted = frozenset(hosted)
        if self.hosted:
            await self._renew_entry()
        await self._poll()
        self._started = True
        self._renewing = asyncio.create_task(
            self._every(self.config.lease_seconds / 3, self._renew), name="actors-renew")
        self._polling_task = asyncio.create_task(
            self._every(self.config.poll_seconds, self._poll), name="actors-poll")

    async def update(self, hosted: Mapping[str, EntityConfig]) -> None:
        self.hosted = frozenset(hosted)
        if self.hosted:
            await self._renew_entry()
        elif self._joined:
            self._view(await self.membership.leave())
            self._joined = False
        await self._poll()

    async def stop(self) -> None:
        """Leave first (the others' rings drop this member and they wait for its leases),
        serve no new turns, halt every actor (draining), release the leases, stop renewing."""
        if self._stopping:
            return
        self._stopping = True
        await stop_task(self._polling_task)
        async with self._polling:  # a poll under way finishes first
            pass
        pending = list(self._halts)  # takes and releases under way end first
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._signal()
        if self._joined:
            try:
                await self.membership.leave()
            except PylottoError as exc:
                log.warning("actor placement: leaving the members failed (the entry "
                            "expires by itself): %s", exc.message)
            self._joined = False
        held = list(self.leases.held)
        self._releasing.update(held)
        await self._halt(drain=True)
        halts = list(self._halts)
        if halts:
            await asyncio.gather(*halts, return_exceptions=True)
        await self.leases.release(held)
        self._releasing.clear()
        await stop_task(self._renewing)

    async def locate(self, actor: ActorRef) -> Location:
        target = self._target(actor)
        if target != self.address:
            return Location(False, target)
        name = partition_key(actor.type, partition(actor.id, self.config.partitions))
        try:
            async with asyncio.timeout(self.config.handover_timeout_seconds):
                while True:
                    changed = self._changed
                    if self.owns(actor):
                        return Location(True)
                    target = self._target(actor)
                    if target != self.address:
                        return Location(False, target)
                    await changed.wait()
        except TimeoutError:
            raise Unavailable(f"actor {actor.key}: its partition {name} was not handed over "
                              f"to this sidecar in {self.config.handover_timeout_seconds:g}s",
                              where=MOVED) from None

    def owns(self, actor: ActorRef) -> bool:
        if self._stopping or actor.type not in self.hosted:
            return False
        name = partition_key(actor.type, partition(actor.id, self.config.partitions))
        return name not in self._releasing and self.leases.valid(name)

    @property
    def connected(self) -> bool:
        last = self._last_contact
        return (last is not None and not self._stopping
                and self.clock.monotonic() - last < self.config.lease_seconds)

    @property
    def ready(self) -> bool:
        return self._started and self._ready and not self._stopping

    # ---- where actors go ---------------------------------------------------------------------

    def _target(self, actor: ActorRef) -> str:
        ring = self._rings.get(actor.type)
        if ring is None:
            ring = self._ring(actor.type)
        owner = ring.owner(partition_key(actor.type, partition(actor.id,
                                                               self.config.partitions)))
        if owner is None:
            raise no_address(actor)
        return owner

    def _ring(self, actor_type: str) -> Ring:
        members = hosting(self._members.values(), actor_type, self.clock.wall())
        if self._stopping:
            members = [m for m in members if m != self.address]
        return Ring(members)

    def _view(self, members: Members) -> None:
        if _table(members) != _table(self._members):
            self.metrics.actor_table_updated()
        self._members = members
        self._last_contact = self.clock.monotonic()
        self._rings = {}
        for actor_type in {t for m in members.values() for t in m.types}:
            self._rings[actor_type] = self._ring(actor_type)

    def _mine(self) -> set[str]:
        """The partitions the current rings give this member."""
        if self._stopping:
            return set()
        out: set[str] = set()
        for actor_type in self.hosted:
            ring = self._rings.get(actor_type)
            if ring is None:
                continue
            for p in range(self.config.partitions):
                name = partition_key(actor_type, p)
                if ring.owner(name) == self.address:
                    out.add(name)
        return out

    def _signal(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ---- the loops ---------------------------------------------------------------------------

    async def _every(self, seconds: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
            except PylottoError as exc:
                log.warning("actor placement: %s", exc.message)
            except Exception:
                log.exception("actor placement step failed")

    async def _renew_entry(self) -> None:
        try:
            members = await self.membership.renew(self.hosted)
        except Exception:
            self.metrics.actor_status_reported(False)
            raise
        self.metrics.actor_status_reported(True)
        self._view(members)
        self._joined = True

    async def _renew(self) -> None:
        try:
            if self.hosted and not self._stopping:
                await self._renew_entry()
        finally:  # the leases are renewed even when the member document could not be
            lost = await self.leases.renew()
            if lost:
                log.warning("actor placement: partitions %s were taken by another sidecar",
                            ", ".join(sorted(lost)))
                self._lapsed.update(lost)
                self._spawn_halt(drain=False)
            self._signal()

    async def _poll(self) -> None:
        async with self._polling:
            if self._stopping:
                return
            try:
                self._view(await self.membership.read())
            finally:
                self._settle()
            self._signal()

    def _settle(self) -> None:
        """Release what moved away, halt what lapsed and take what came here (all in the
        background: a poll never waits for a drain)."""
        mine = self._mine()
        held = set(self.leases.held)
        moving = {n for n in held - mine if n not in self._releasing}
        if moving:
            self._releasing.update(moving)
            self._spawn_release(moving)
        lapsed = {n for n in held if not self.leases.valid(n)}
        if lapsed - self._lapsed:
            self._spawn_halt(drain=False)
        self._lapsed = lapsed
        wanted = [n for n in sorted(mine) if not self.leases.valid(n)]
        self._ready = not wanted and not self._releasing
        if wanted:
            task = asyncio.create_task(self._take(wanted))
            self._halts.add(task)
            task.add_done_callback(self._halts.discard)

    async def _take(self, names: list[str]) -> None:
        try:
            taken = await self.leases.take(names)
        except PylottoError as exc:
            log.warning("actor placement: taking partitions failed: %s", exc.message)
            return
        if taken:
            self._lapsed.difference_update(taken)
            log.debug("actor placement: took %s", ", ".join(taken))
            self._ready = all(self.leases.valid(n) for n in self._mine()) \
                and not self._releasing
            self._signal()

    def _spawn_release(self, names: Iterable[str]) -> None:
        chosen = set(names)

        async def release() -> None:
            try:
                await self._halt(drain=True)
                await self.leases.release(chosen)
            finally:
                self._releasing.difference_update(chosen)
                self._signal()

        task = asyncio.create_task(release())
        self._halts.add(task)
        task.add_done_callback(self._halts.discard)

    def _spawn_halt(self, drain: bool) -> None:
        task = asyncio.create_task(self._halt(drain))
        self._halts.add(task)
        task.add_done_callback(self._halts.discard)

    async def _halt(self, drain: bool) -> None:
        if self.listener is None:
            return
        try:
            await self.listener.halt(self.owns, drain)
        except Exception:
            log.exception("actor placement: halting actors failed")

    async def aclose(self) -> None:
        """Stop the loops and hand nothing over: what a SIGKILL (or a long pause) leaves
        behind. :meth:`owns` still answers from the leases until they lapse by the monotonic
        clock; the other members take them once expired."""
        await stop_tasks(self._polling_task, self._renewing, *self._halts)


def _table(members: Members) -> dict[str, frozenset[str]]:
    """What a placement table says: each member's hosted types (not when its entry ends)."""
    return {address: member.types for address, member in members.items()}
