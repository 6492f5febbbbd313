"""What the sidecar and an app hosting actors hand each other (docs/design/actors.md §1): the
actor, a call and its answer, a reminder or timer tick, a hosted type's settings, and
:class:`ActorHost`, the app side (``appchannel/actors.py``: an HTTP app or a gRPC app's
``SubscribeActorEventsAlpha1`` stream). It lives in the app-channel layer, below the actor
runtime (``capabilities/actors``), which re-exports it from its ``api``.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

SEPARATOR = "||"
"""daprd's ``DaprSeparator``: actor keys are ``<type>||<id>``, state keys
``<appid>||<type>||<id>||<key>``."""

REENTRANCY_HEADER = "Dapr-Reentrancy-Id"
ACTOR_ERROR_HEADER = "X-Daprerrorresponseheader"
REMINDER_CANCEL_HEADER = "X-Daprremindercancel"


@dataclass(frozen=True, slots=True)
class ActorRef:
    """One actor: its type and id (validated by ``names.py`` before one is made)."""

    type: str
    id: str

    @property
    def key(self) -> str:
        """``<type>||<id>``, daprd's actor key."""
        return f"{self.type}{SEPARATOR}{self.id}"


Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ActorCall:
    """A method call on an actor, as the caller sent it (toward the app the verb is PUT)."""

    actor: ActorRef
    method: str
    """Normalised as daprd does (``names.normalize_method``)."""
    data: bytes = b""
    content_type: str = ""
    headers: Headers = ()
    """The caller's metadata (HTTP headers / gRPC metadata), passed to the app."""
    reentrancy_id: str | None = None
    """``Dapr-Reentrancy-Id`` of a call from inside an actor's turn (joins that turn when the
    type is reentrant)."""
    query: str = ""
    """The caller's raw query string (HTTP callers; daprd passes it on to the app)."""
    forwarded: bool = False
    """Came from another sidecar: served here or answered "moved", never forwarded again."""


@dataclass(frozen=True, slots=True)
class ActorAnswer:
    """The app's answer to a call."""

    status: int = 200
    data: bytes = b""
    content_type: str = ""
    headers: Headers = ()
    actor_error: bool = False
    """The app reported an actor error (HTTP ``X-Daprerrorresponseheader`` on a 200, gRPC
    ``invoke_response.error``): the caller gets the app's answer as it is."""


class TickKind(Enum):
    REMINDER = "remind"
    TIMER = "timer"


@dataclass(frozen=True, slots=True)
class Tick:
    """A reminder or timer firing, for the actor's host (``PUT .../method/remind/<name>`` or
    ``.../method/timer/<name>``)."""

    actor: ActorRef
    kind: TickKind
    name: str
    due_time: str = ""
    period: str = ""
    data: bytes = b""
    """The stored JSON (``null``-free: b"" when none was given)."""
    callback: str = ""
    """Timers only: the callback method the SDK dispatches to."""


@dataclass(frozen=True, slots=True)
class TickOutcome:
    delivered: bool
    """False: not delivered (moved, no host, the app failed): the tick is retried."""
    cancel: bool = False
    """The app answered ``X-Daprremindercancel: true``: the reminder/timer is removed."""


@dataclass(frozen=True, slots=True)
class Reentrancy:
    enabled: bool = False
    max_stack_depth: int = 32


@dataclass(frozen=True, slots=True)
class EntityConfig:
    """One hosted type's settings (``/dapr/config`` or the stream's ``initial_request``, with
    ``entitiesConfig`` overrides applied; defaults as daprd's)."""

    idle_timeout: float = 3600.0
    drain_ongoing_call_timeout: float = 2.0
    drain_rebalanced_actors: bool = False
    reentrancy: Reentrancy = field(default_factory=Reentrancy)


class ActorHost(abc.ABC):
    """The app hosting actor types."""

    description: str = "app"

    @abc.abstractmethod
    async def hosted(self) -> Mapping[str, EntityConfig]:
        """The types the app hosts and their settings ({}: none)."""

    @abc.abstractmethod
    async def invoke(self, call: ActorCall, reentrancy_id: str | None) -> ActorAnswer:
        """Run a method in the actor (the turn is held by the caller). A 404 from an HTTP
        app raises NotFound ("actor method not found: <path>"); a failure to reach the app
        Unavailable; any other answer, error statuses included, is returned."""

    @abc.abstractmethod
    async def tick(self, tick: Tick) -> TickOutcome:
        """Hand a reminder or timer to the actor (the turn is held by the caller)."""

    @abc.abstractmethod
    async def deactivate(self, actor: ActorRef) -> bool:
        """``DELETE /actors/<type>/<id>``: True when the app acknowledged it; a failure (not
        reached, an error answer) is logged and answers False, never raised."""
