"""The shared vocabulary of the actor runtime (docs/design/actors.md §4): what the local
runtime, the app hosts, placement, timers and reminders hand each other. No behaviour here.

Who implements what:

- :class:`ActorHost` — the app side (``appchannel/actors.py``): an HTTP app (``GET
  /dapr/config``, ``PUT /actors/...``) or a gRPC app's ``SubscribeActorEventsAlpha1`` stream.
- :class:`Placement` — which sidecar an actor lives on (``capabilities/actors/placement/``);
  :class:`SingleMember` in the local runtime is the one-sidecar default.
- :class:`Timers` and :class:`Reminders` — ticks later (``timers.py``, ``reminders.py``), fired
  through :class:`TickSink` (the router), never straight to the app.
- ``ActorsCapability`` (``capabilities/actors/__init__.py``) — what the facades call.

Errors: every failure is a :class:`~pylotto.core.errors.PylottoError` whose ``where`` is one of
:data:`WHERE`; ``core/dapr_errors.py`` renders each (where, kind) as daprd's ``ERR_ACTOR_*``.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from pylotto.appchannel.actor_host import (
    ACTOR_ERROR_HEADER,
    REENTRANCY_HEADER,
    REMINDER_CANCEL_HEADER,
    SEPARATOR,
    ActorAnswer,
    ActorCall,
    ActorHost,
    ActorRef,
    EntityConfig,
    Headers,
    Reentrancy,
    Tick,
    TickKind,
    TickOutcome,
)
from pylotto.capabilities.scheduler.job import FailurePolicy

__all__ = [  # with the app side's vocabulary (appchannel/actor_host.py), re-exported
    "ACTOR_ERROR_HEADER",
    "MOVED",
    "REENTRANCY_HEADER",
    "REMINDER_CANCEL_HEADER",
    "SEPARATOR",
    "WHERE",
    "ActorAnswer",
    "ActorCall",
    "ActorHost",
    "ActorRef",
    "ActorStatus",
    "Actors",
    "EntityConfig",
    "Forwarder",
    "Headers",
    "LocalActors",
    "Location",
    "Placement",
    "PlacementListener",
    "Reentrancy",
    "Reminder",
    "ReminderSpec",
    "Reminders",
    "StateOperation",
    "Tick",
    "TickKind",
    "TickOutcome",
    "TickSink",
    "TimerSpec",
    "Timers",
]

WHERE: Mapping[str, str] = {
    # where → daprd's error code (the kind of the PylottoError picks the row; see §2.2)
    "actors.disabled": "ERR_ACTOR_NO_PLACEMENT",          # Unavailable: no actors here
    "actors.runtime": "ERR_ACTOR_RUNTIME_NOT_FOUND",      # NotConfigured: no actor store
    "actors.closed": "ERR_ACTOR_RUNTIME_CLOSED",          # Unavailable: shutting down
    "actors.reserved": "ERR_ACTOR_TYPE_RESERVED",         # PermissionDenied: dapr.internal.*
    "actors.name": "ERR_BAD_REQUEST",                     # InvalidArgument: a bad name
    "actors.invoke": "ERR_ACTOR_INVOKE_METHOD",           # any kind: the invoke failed
    "actors.instance": "ERR_ACTOR_INSTANCE_MISSING",      # a transaction, not active here
    "actors.state_get": "ERR_ACTOR_STATE_GET",
    "actors.state_transaction": "ERR_ACTOR_STATE_TRANSACTION_SAVE",
    "actors.state_operation": "ERR_NOT_SUPPORTED_STATE_OPERATION",  # Unsupported
    "actors.reminder_hosted": "ERR_ACTOR_REMINDER_NON_HOSTED",      # PermissionDenied
    "actors.reminder_create": "ERR_ACTOR_REMINDER_CREATE",  # AlreadyExists → _ALREADY_EXISTS
    "actors.reminder_get": "ERR_ACTOR_REMINDER_GET",        # NotFound → _NOT_FOUND
    "actors.reminder_delete": "ERR_ACTOR_REMINDER_DELETE",
    "actors.timer_create": "ERR_ACTOR_TIMER_CREATE",
    "actors.timer_delete": "ERR_ACTOR_TIMER_DELETE",
    "actors.stack_depth": "ERR_ACTOR_STACK_DEPTH",        # ResourceExhausted
    "actors.moved": "ERR_ACTOR_INVOKE_METHOD",            # Unavailable: not here (any more)
}
"""The ``where`` of every actor error, with the daprd code it is answered with."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where an actor lives now: here, or the internal gRPC address of another sidecar."""

    local: bool
    address: str = ""


class PlacementListener(abc.ABC):
    """The local runtime, told by placement which actors it must give up."""

    @abc.abstractmethod
    async def halt(self, keep: Callable[[ActorRef], bool], drain: bool) -> None:
        """Deactivate every active actor for which ``keep`` is False (waiting for ongoing
        turns first when ``drain``, bounded by each type's drain timeout)."""


class Placement(abc.ABC):
    """Which sidecar runs which actor: at most one at a time, also during a rebalance."""

    @abc.abstractmethod
    async def start(self, hosted: Mapping[str, EntityConfig],
                    listener: PlacementListener) -> None:
        """Join with the types this sidecar's app hosts (may be none: then it only routes)."""

    @abc.abstractmethod
    async def update(self, hosted: Mapping[str, EntityConfig]) -> None:
        """The hosted types changed (a gRPC app's stream opened or closed)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Leave in order: hand everything over (the listener halts what moved), then go."""

    @abc.abstractmethod
    async def locate(self, actor: ActorRef) -> Location:
        """Where ``actor`` lives; waits (bounded) while its place is being handed over.
        Raises NotFound ``did not find address for actor '<type>||<id>'`` when no member hosts
        the type."""

    @abc.abstractmethod
    def owns(self, actor: ActorRef) -> bool:
        """True while this sidecar may run ``actor`` (checked before every turn)."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Metadata's ``placement: connected``."""

    @property
    @abc.abstractmethod
    def ready(self) -> bool:
        """Metadata's ``hostReady``: this sidecar's share of the actors is settled."""


TickSink = Callable[[Tick], Awaitable[TickOutcome]]
"""The router's entry for ticks: delivers to the actor wherever it lives."""

MOVED = "actors.moved"
"""The ``where`` of the Unavailable a sidecar answers for an actor it does not (or no longer)
own: the router re-locates and retries (5 x 1 s, as daprd's built-in actor retries); between
sidecars it travels as gRPC UNAVAILABLE with the detail ``actor moved``."""


class LocalActors(abc.ABC):
    """This sidecar's own actors: what the router runs a call or tick on once placement says
    "here", and what the internal ``SidecarActors`` servicer runs forwarded calls on."""

    @abc.abstractmethod
    async def run(self, call: ActorCall) -> ActorAnswer:
        """Activate if needed and run ``call`` in a turn. Unavailable at :data:`MOVED` when
        placement says this sidecar does not own the actor."""

    @abc.abstractmethod
    async def run_tick(self, tick: Tick) -> TickOutcome:
        """Hand ``tick`` to the actor in a turn (Unavailable at :data:`MOVED` as ``run``)."""


class Forwarder(abc.ABC):
    """Calls and ticks toward another sidecar (the internal gRPC ``SidecarActors`` client)."""

    @abc.abstractmethod
    async def call(self, address: str, call: ActorCall) -> ActorAnswer:
        """``call`` (sent with ``forwarded=True``) run on the sidecar at ``address``; its
        "moved" answer raises Unavailable at :data:`MOVED`, an unreachable sidecar
        Unavailable."""

    @abc.abstractmethod
    async def fire(self, address: str, tick: Tick) -> TickOutcome:
        """``tick`` delivered by the sidecar at ``address`` (errors as :meth:`call`)."""

    async def close(self) -> None:  # noqa: B027 (optional: most forwarders hold nothing)
        """Release the connections to other sidecars (on stop)."""


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """A timer's registration (HTTP body / ``RegisterActorTimerRequest``), unparsed: parsing
    and its errors (``actors.timer_create``) are :class:`Timers`' job."""

    due_time: str = ""
    period: str = ""
    ttl: str = ""
    callback: str = ""
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class ReminderSpec:
    """A reminder's registration, unparsed (errors: ``actors.reminder_create``)."""

    due_time: str = ""
    period: str = ""
    ttl: str = ""
    data: bytes = b""
    failure_policy: FailurePolicy | None = None


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder as ``GetActorReminder``/``ListActorReminders`` answer it."""

    actor: ActorRef
    name: str
    spec: ReminderSpec


class Timers(abc.ABC):
    """In-memory timers of this sidecar."""

    @abc.abstractmethod
    def start(self, sink: TickSink) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def register(self, actor: ActorRef, name: str, spec: TimerSpec) -> None: ...

    @abc.abstractmethod
    async def unregister(self, actor: ActorRef, name: str) -> None: ...


class Reminders(abc.ABC):
    """Durable reminders (the scheduler over the actor state store)."""

    @abc.abstractmethod
    async def start(self, sink: TickSink) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def register(self, actor: ActorRef, name: str, spec: ReminderSpec,
                       overwrite: bool) -> None: ...

    @abc.abstractmethod
    async def unregister(self, actor: ActorRef, name: str) -> None: ...

    @abc.abstractmethod
    async def get(self, actor: ActorRef, name: str) -> Reminder: ...

    @abc.abstractmethod
    async def list(self, actor_type: str, actor_id: str | None) -> list[Reminder]: ...

    @abc.abstractmethod
    async def unregister_all(self, actor_type: str, actor_id: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class StateOperation:
    """One operation of an actor state transaction."""

    operation: str
    """``upsert`` or ``delete`` (anything else: Unsupported at ``actors.state_operation``)."""
    key: str
    value: bytes = b""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActorStatus:
    """Metadata's ``actorRuntime``."""

    runtime_status: str
    """``INITIALIZING``, ``DISABLED`` or ``RUNNING``."""
    active: Mapping[str, int]
    host_ready: bool
    placement: str
    """``placement: connected`` / ``placement: disconnected``."""


class Actors(abc.ABC):
    """What the facades call (``ActorsCapability`` implements it). Names are validated here,
    not in the facades; every error is a PylottoError with a ``where`` of :data:`WHERE`."""

    @abc.abstractmethod
    async def invoke(self, call: ActorCall) -> ActorAnswer:
        """Route the call to the actor's sidecar and run it in a turn there."""

    @abc.abstractmethod
    async def get_state(self, actor: ActorRef, key: str) -> tuple[bytes | None,
                                                                 Mapping[str, str]]:
        """The value (None: absent → HTTP 204) and its metadata; needs no activation."""

    @abc.abstractmethod
    async def transact(self, actor: ActorRef, operations: list[StateOperation]) -> None:
        """Atomically apply ``operations``; the actor must be active on this sidecar."""

    @abc.abstractmethod
    async def register_timer(self, actor: ActorRef, name: str, spec: TimerSpec) -> None: ...

    @abc.abstractmethod
    async def unregister_timer(self, actor: ActorRef, name: str) -> None: ...

    @abc.abstractmethod
    async def register_reminder(self, actor: ActorRef, name: str, spec: ReminderSpec,
                                overwrite: bool = True) -> None: ...

    @abc.abstractmethod
    async def unregister_reminder(self, actor: ActorRef, name: str) -> None: ...

    @abc.abstractmethod
    async def get_reminder(self, actor: ActorRef, name: str) -> Reminder: ...

    @abc.abstractmethod
    async def list_reminders(self, actor_type: str,
                             actor_id: str | None) -> list[Reminder]: ...

    @abc.abstractmethod
    async def unregister_reminders(self, actor_type: str, actor_id: str | None) -> None: ...

    @abc.abstractmethod
    async def attach(self, host: ActorHost) -> None:
        """An app host whose types this sidecar now serves (start-up for an HTTP app; a gRPC
        app's stream when it opens)."""

    @abc.abstractmethod
    async def detach(self, host: ActorHost) -> None:
        """The host went (a gRPC app's stream closed): its types are served no more."""

    @abc.abstractmethod
    def status(self) -> ActorStatus: ...
