"""What the sidecar says about itself: the metadata view (Dapr's GetMetadata and
``/v1.0/metadata``, the actuator's info), the app's own metadata attributes (SetMetadata),
start-up and readiness, and the Shutdown request.

:class:`RuntimeStatus` is the one small object the metadata and lifecycle facades and the
actuator get (beside the :class:`~pylotto.capabilities.services.CapabilityServices`): the
runtime fills it in, they read it, so none of them needs the runtime itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from pylotto.components.base import Component
from pylotto.components.secretstores.base import SecretStore
from pylotto.version import __version__

if TYPE_CHECKING:
    from pylotto.capabilities.actors.api import Actors, ActorStatus
    from pylotto.capabilities.pubsub import PubSubCapability
    from pylotto.capabilities.workflows import Workflows
    from pylotto.config.model import RuntimeConfig

RUNTIME_VERSION = f"pylotto-{__version__}"
"""The ``runtimeVersion`` the metadata APIs report."""


@dataclass(frozen=True)
class ComponentInfo:
    name: str
    capability: str
    type: str
    """Dapr's spelling: ``state.redis``."""
    version: str
    features: list[str]


def reported_features(capability: str, component: Component) -> list[str]:
    """The capabilities the metadata APIs report for ``component``, by daprd's rule
    (``getComponentsCapabilitesMap``): a state store, pub/sub or secret store its features,
    an input binding ``INPUT_BINDING``, an output binding ``OUTPUT_BINDING`` (both, in that
    order, for one that is both). Only what pylotto serves: not ``ACTOR`` (daprd's
    "ETAG and TRANSACTIONAL", for its actor runtime, which pylotto has not), nor
    ``KEYS_LIKE`` / ``DELETE_WITH_PREFIX`` (used by daprd's actors and workflows only)."""
    features = sorted(str(f) for f in component.features)
    if capability == "bindings":
        from pylotto.components.bindings.base import INPUT, OUTPUT, directions

        served = directions(component)
        return [*features, *(["INPUT_BINDING"] if INPUT in served else []),
                *(["OUTPUT_BINDING"] if OUTPUT in served else [])]
    if isinstance(component, SecretStore) and component.multiple_values_per_secret:
        return sorted({*features, "MULTIPLE_KEY_VALUES_PER_SECRET"})
    return features


@dataclass
class ComponentHealth:
    status: str = "INIT"  # INIT | UP | DOWN
    reason: str = ""
    type: str = ""

    def as_json(self) -> dict[str, Any]:
        details = {"type": self.type, **({"reason": self.reason} if self.reason else {})}
        return {"status": self.status, "details": details}


class Inventory(Protocol):
    """What the runtime (:class:`pylotto.process.runtime.Runtime`) reports of its components."""

    @property
    def config(self) -> RuntimeConfig:
        """The configuration as it runs now (a hot reload replaces it)."""

    def describe_components(self) -> list[ComponentInfo]: ...

    async def check_readiness(self) -> dict[str, ComponentHealth]: ...


@dataclass(frozen=True, slots=True)
class MetadataView:
    """The sidecar as its metadata APIs describe it; each facade only writes it in its
    dialect."""

    app_id: str
    runtime_version: str
    components: list[ComponentInfo]
    subscriptions: list[tuple[str, str, str]]
    """(pubsub, topic, PROGRAMMATIC | STREAMING) of the active subscriptions."""
    extended: dict[str, str]
    app_port: int
    app_protocol: str
    channel_address: str
    actor_runtime: ActorStatus | None = None
    """Dapr's ``actorRuntime`` (None: no actor runtime in this sidecar at all)."""
    connected_workers: int = 0
    """Dapr's ``workflows.connectedWorkers``: the workflow SDK streams connected now."""


ACTOR_FEATURE = "ACTOR"
"""The capability daprd reports for a state store with ETAG and TRANSACTIONAL (actors on)."""


def with_actor_feature(component: ComponentInfo) -> ComponentInfo:
    """``component`` with ``ACTOR`` among its capabilities when it is a state store that could
    hold actor state."""
    if component.capability != "state" or not {"ETAG", "TRANSACTIONAL"} <= set(
            component.features):
        return component
    return replace(component, features=sorted({*component.features, ACTOR_FEATURE}))


class RuntimeStatus:
    """Metadata, health and shutdown of one sidecar (see the module's docstring)."""

    def __init__(self, inventory: Inventory, pubsub: PubSubCapability,
                 actors: Actors | None = None, workflows: Workflows | None = None) -> None:
        self._inventory = inventory
        self._pubsub = pubsub
        self._actors = actors
        self._workflows = workflows
        self.started = False
        """Every component and capability service is up (set by the runtime)."""
        self.started_at = 0.0
        self.listening = False
        """Set by the server once every API listener accepts calls (readiness waits for it)."""
        self.extended_metadata: dict[str, str] = {}
        """Attributes the app set (Dapr's SetMetadata), reported back by GetMetadata."""
        self.shutdown_requested = asyncio.Event()
        """Set by an API call asking the sidecar to stop (Dapr's Shutdown)."""

    @property
    def config(self) -> RuntimeConfig:
        return self._inventory.config

    def view(self) -> MetadataView:
        app = self._inventory.config.app
        actors = self._actors.status() if self._actors is not None else None
        components = self._inventory.describe_components()
        if actors is not None and actors.runtime_status != "DISABLED":
            components = [with_actor_feature(c) for c in components]
        return MetadataView(
            app_id=app.id,
            runtime_version=RUNTIME_VERSION,
            components=components,
            subscriptions=self._pubsub.describe_subscriptions() if self.started else [],
            extended=self.extended_metadata,
            app_port=app.port or 0,
            app_protocol=app.protocol,
            channel_address=app.host,
            actor_runtime=actors,
            connected_workers=(len(self._workflows.dispatcher.workers)
                               if self._workflows is not None else 0),
        )

    async def readiness(self) -> dict[str, ComponentHealth]:
        """Ping every running component (a failed or slow ping marks it DOWN)."""
        return await self._inventory.check_readiness()

    def set_metadata(self, key: str, value: str) -> None:
        self.extended_metadata[key] = value

    def request_shutdown(self) -> None:
        self.shutdown_requested.set()
