"""Dapr virtual actors (docs/design/actors.md): :class:`ActorsCapability`, what the facades call.

Construction (process/assembly.py)::

    from pylotto.capabilities.actors import ActorsCapability, ActorState

    store = ActorState(state, store_name, app_id) if store_name else None
    actors = ActorsCapability(store, config.actors, app_id,
                              placement=None,   # None: SingleMember (one sidecar)
                              forwarder=None,   # the internal gRPC client between sidecars
                              timers=None, reminders=None)  # None: refused, see below
    await actors.start()                  # after the components are up
    await actors.attach(http_actor_host)  # once /dapr/config was read (or a gRPC stream opens)
    ...
    await actors.detach(host)             # a gRPC app's stream closed
    await actors.stop()                   # before the components close

- ``store``: the actor state store (:class:`ActorState` over the state capability and the
  component's name; the component is looked up on every call). None: no actor state store —
  invocations still work on one sidecar, state calls answer NotConfigured at
  ``actors.runtime``. A store without ETAG and TRANSACTIONAL makes :meth:`start` fail with
  NotConfigured at ``actors.runtime`` (a clear start-up error).
- ``config``: ``RuntimeConfig.actors`` (``fencing`` is read here; the placement settings by the
  placement across sidecars).
- ``timers`` / ``reminders``: None refuses timer calls with NotConfigured at
  ``actors.timer_create`` / ``actors.timer_delete`` and reminder calls with NotConfigured at
  ``actors.runtime`` (daprd's "no reminders" answer).
- :attr:`ActorsCapability.local` is the :class:`LocalActors` the internal ``SidecarActors``
  servicer runs forwarded calls and ticks on; :attr:`ActorsCapability.router` has ``fire``,
  the :data:`TickSink` timers and reminders deliver through (given to them by :meth:`start`).

Every error is a :class:`~pylotto.core.errors.PylottoError` whose ``where`` is one of
:data:`~pylotto.capabilities.actors.api.WHERE`; ``detail`` holds daprd's inner text (e.g.
``failed to lookup actor: did not find address for actor 'T||1'``) for the ``%s`` of its
message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import replace

from pylotto.capabilities.actors.api import (
    ActorAnswer,
    ActorCall,
    ActorHost,
    ActorRef,
    Actors,
    ActorStatus,
    EntityConfig,
    Forwarder,
    Placement,
    Reminder,
    Reminders,
    ReminderSpec,
    StateOperation,
    Timers,
    TimerSpec,
)
from pylotto.capabilities.actors.names import (
    check_reserved,
    normalize_method,
    validate_name,
)
from pylotto.capabilities.actors.placement.single import SingleMember
from pylotto.capabilities.actors.router import RETRIES, RETRY_INTERVAL, Router
from pylotto.capabilities.actors.state import RUNTIME_NOT_FOUND, ActorState
from pylotto.capabilities.actors.table import ActorTable
from pylotto.config.model import ActorsConfig
from pylotto.core.errors import (
    Internal,
    NotConfigured,
    PermissionDenied,
    PylottoError,
    Unavailable,
)
from pylotto.core.resiliency import RetryPolicy
from pylotto.observability.dapr_metrics import DaprMetrics

log = logging.getLogger("pylotto.actors")

NON_HOSTED = "operations on actor reminders are only possible on hosted actor types"
CLOSED = "actor runtime is closed"


class ActorsCapability(Actors):
    """The actor runtime of one sidecar (see the module's docstring for how to build it)."""

    def __init__(self, store: ActorState | None, config: ActorsConfig, app_id: str, *,
                 placement: Placement | None = None, forwarder: Forwarder | None = None,
                 timers: Timers | None = None, reminders: Reminders | None = None,
                 retries: int | None = None, retry_interval: float | None = None,
                 retry_policy: RetryPolicy | None = None,
                 metrics: DaprMetrics | None = None) -> None:
        """``retries`` / ``retry_interval``: the router's "moved" retries (None: daprd's 5 x
        1 s); ``retry_policy``: the resiliency policy ``DaprBuiltInActorNotFoundRetries``
        that replaces them (None: none given); ``metrics``: where daprd's actor metrics of
        the active actors are counted (deactivations, calls waiting for a turn)."""
        self.store = store
        self.config = config
        self.app_id = app_id
        self.placement: Placement = placement if placement is not None else SingleMember()
        self.forwarder = forwarder
        self.timers = timers
        self.reminders = reminders
        self._hosts: dict[ActorHost, dict[str, EntityConfig]] = {}
        self._types: dict[str, tuple[ActorHost, EntityConfig]] = {}
        self.table = ActorTable(self._hosting, self.placement.owns, state=store,
                                fencing=config.fencing, metrics=metrics)
        self.local = self.table
        """The :class:`LocalActors` of this sidecar."""
        self.router = Router(self.placement, self.table, forwarder,
                             retries=RETRIES if retries is None else retries,
                             retry_interval=(RETRY_INTERVAL if retry_interval is None
                                             else retry_interval),
                             joins=self.table.joins, retry_policy=retry_policy)
        self._started = asyncio.Event()
        self._placement_started = False
        self._closed = False
        self._lock = asyncio.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the actor state store, join placement (with the types attached so far) and
        start timers and reminders."""
        if self.store is not None:
            self.store.store()  # NotConfigured at actors.runtime: a clear start-up error
        async with self._lock:
            await self.placement.start(self.hosted(), self.table)
            self._placement_started = True
        if self.timers is not None:
            self.timers.start(self.router.fire)
        if self.reminders is not None:
            await self.reminders.start(self.router.fire)
        self._started.set()
        log.info("actors: runtime started (state store: %s, hosted types: %s)",
                 self.store.store_name if self.store is not None else "none",
                 ", ".join(sorted(self._types)) or "none")

    async def stop(self) -> None:
        """Stop timers and reminders, leave placement, deactivate every actor (after their
        ongoing turns, up to the drain timeouts)."""
        if self._closed:
            return
        self._closed = True
        if self.timers is not None:
            await self.timers.stop()
        if self.reminders is not None:
            await self.reminders.stop()
        if self._placement_started:
            await self.placement.stop()
        await self.table.stop()
        if self.forwarder is not None:
            await self.forwarder.close()

    def hosted(self) -> dict[str, EntityConfig]:
        """The types this sidecar's app(s) host now, with their settings."""
        return {name: config for name, (_, config) in self._types.items()}

    def _hosting(self, actor_type: str) -> tuple[ActorHost, EntityConfig] | None:
        return self._types.get(actor_type)

    def _retype(self) -> None:
        types: dict[str, tuple[ActorHost, EntityConfig]] = {}
        for host, hosted in self._hosts.items():
            for name, config in hosted.items():
                if name in types:
                    log.warning("actors: type %s is hosted by %s and %s; %s serves it", name,
                                types[name][0].description, host.description,
                                types[name][0].description)
                    continue
                types[name] = (host, config)
        self._types = types

    async def attach(self, host: ActorHost) -> None:
        hosted = dict(await host.hosted())
        async with self._lock:
            self._hosts[host] = hosted
            self._retype()
            if self._placement_started:
                await self.placement.update(self.hosted())
        if hosted:
            log.info("actors: %s hosts %s", host.description, ", ".join(sorted(hosted)))

    async def detach(self, host: ActorHost) -> None:
        async with self._lock:
            hosted = self._hosts.pop(host, None)
            if hosted is None:
                return
            before = set(self._types)
            self._retype()
            gone = before - set(self._types)
            table = self.table

            def keep(ref: ActorRef) -> bool:
                entry = table.get(ref)
                return entry is None or entry.host is not host

            await table.halt(keep, drain=True)
            if self._placement_started:
                await self.placement.update(self.hosted())
        if gone:
            log.info("actors: %s left; types no longer hosted: %s", host.description,
                     ", ".join(sorted(gone)))

    def status(self) -> ActorStatus:
        running = self._started.is_set() and not self._closed
        active = dict.fromkeys(self._types, 0)  # every hosted type, 0 included (as daprd)
        active.update(self.table.counts())
        return ActorStatus(
            runtime_status="RUNNING" if running else "INITIALIZING",
            active=active,
            host_ready=running and self.placement.ready,
            placement="placement: connected" if running and self.placement.connected
            else "placement: disconnected",
        )

    # ---- checks ------------------------------------------------------------------------------

    async def _ready(self) -> None:
        if self._closed:
            raise Unavailable(CLOSED, where="actors.closed", detail=CLOSED)
        if not self._started.is_set():
            try:
                async with asyncio.timeout(self.config.handover_timeout_seconds):
                    await self._started.wait()
            except TimeoutError:
                raise NotConfigured(RUNTIME_NOT_FOUND, where="actors.runtime",
                                    detail="the actor runtime did not start in time") from None
            if self._closed:
                raise Unavailable(CLOSED, where="actors.closed", detail=CLOSED)

    def _state(self) -> ActorState:
        if self.store is None:
            raise NotConfigured(RUNTIME_NOT_FOUND, where="actors.runtime",
                                detail=RUNTIME_NOT_FOUND)
        return self.store

    def _hosted_here(self, actor_type: str) -> None:
        if actor_type not in self._types:
            raise PermissionDenied(NON_HOSTED, where="actors.reminder_hosted",
                                   detail=NON_HOSTED, type=actor_type)

    def _reminders(self) -> Reminders:
        if self.reminders is None:
            raise NotConfigured(RUNTIME_NOT_FOUND, where="actors.runtime",
                                detail="reminders are not available on this sidecar")
        return self.reminders

    # ---- invoke and state --------------------------------------------------------------------

    async def invoke(self, call: ActorCall) -> ActorAnswer:
        check_reserved(call.actor.type)
        validate_name(call.actor.type, "actorType")
        validate_name(call.actor.id, "actorId")
        method = normalize_method(call.method)
        if method != call.method:
            call = replace(call, method=method)
        await self._ready()
        try:
            return await self.router.call(call)
        except PylottoError as err:
            raise err.at("actors.invoke", detail=err.message) from None

    async def get_state(self, actor: ActorRef, key: str) -> tuple[bytes | None,
                                                                 Mapping[str, str]]:
        check_reserved(actor.type)
        await self._ready()
        return await self._state().get(actor, key)

    async def transact(self, actor: ActorRef, operations: list[StateOperation]) -> None:
        check_reserved(actor.type)
        await self._ready()
        self._state()
        await self.table.transact(actor, operations)

    # ---- timers ------------------------------------------------------------------------------

    async def register_timer(self, actor: ActorRef, name: str, spec: TimerSpec) -> None:
        check_reserved(actor.type)
        await self._ready()
        if self.timers is None:
            raise NotConfigured("error creating actor timer: timers are not available on this "
                                "sidecar", where="actors.timer_create",
                                detail="timers are not available on this sidecar")
        validate_name(name)
        if actor.type not in self._types:
            detail = f"can't create timer for actor {actor.key}: actor type not registered"
            raise Internal(f"error creating actor timer: {detail}", where="actors.timer_create",
                           detail=detail, type=actor.type)
        await self.timers.register(actor, name, spec)

    async def unregister_timer(self, actor: ActorRef, name: str) -> None:
        check_reserved(actor.type)
        await self._ready()
        if self.timers is None:
            raise NotConfigured("error deleting actor timer: timers are not available on this "
                                "sidecar", where="actors.timer_delete",
                                detail="timers are not available on this sidecar")
        await self.timers.unregister(actor, name)

    # ---- reminders ---------------------------------------------------------------------------

    async def register_reminder(self, actor: ActorRef, name: str, spec: ReminderSpec,
                                overwrite: bool = True) -> None:
        check_reserved(actor.type)
        await self._ready()
        reminders = self._reminders()
        validate_name(name)
        self._hosted_here(actor.type)
        await reminders.register(actor, name, spec, overwrite)

    async def unregister_reminder(self, actor: ActorRef, name: str) -> None:
        check_reserved(actor.type)
        await self._ready()
        reminders = self._reminders()
        self._hosted_here(actor.type)
        await reminders.unregister(actor, name)

    async def get_reminder(self, actor: ActorRef, name: str) -> Reminder:
        check_reserved(actor.type)
        await self._ready()
        reminders = self._reminders()
        self._hosted_here(actor.type)
        return await reminders.get(actor, name)

    async def list_reminders(self, actor_type: str, actor_id: str | None) -> list[Reminder]:
        check_reserved(actor_type)
        await self._ready()
        reminders = self._reminders()
        self._hosted_here(actor_type)
        return await reminders.list(actor_type, actor_id)

    async def unregister_reminders(self, actor_type: str, actor_id: str | None) -> None:
        check_reserved(actor_type)
        await self._ready()
        reminders = self._reminders()
        self._hosted_here(actor_type)
        await reminders.unregister_all(actor_type, actor_id)


__all__ = ["ActorState", "ActorsCapability", "Router", "SingleMember"]
