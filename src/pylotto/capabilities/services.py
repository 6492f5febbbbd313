"""The ONE record of a sidecar's capability services, handed to everything above them.

Facades, API plugins (:class:`pylotto.plugins.PluginContext`), WASM host functions and the
server get this record, never the runtime: what they may call is the capability layer, where
every rule lives. The runtime keeps what is its own (component lifecycle, hot reload, health).

The fields below are THE list of capabilities: their order is the start order (stop runs in
reverse: subscriptions end before the components they read close), and each field's
``components`` metadata names the registry capability its components come from, which is how
hot reload finds the service of a replaced component. Adding a capability is one field here
(plus, when it needs more than its components, context and policies, what the builder gives).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, get_type_hints

from pylotto.capabilities.actors.api import Actors
from pylotto.capabilities.base import ComponentSet, Policies, RuntimeContext
from pylotto.capabilities.bindings import BindingsCapability
from pylotto.capabilities.configuration import ConfigurationCapability
from pylotto.capabilities.crypto import CryptoCapability
from pylotto.capabilities.email import EmailCapability
from pylotto.capabilities.file import FileCapability
from pylotto.capabilities.hello import HelloCapability
from pylotto.capabilities.invoke import InvokeCapability
from pylotto.capabilities.lock import LockCapability
from pylotto.capabilities.oss import OssCapability
from pylotto.capabilities.pubsub import PubSubCapability
from pylotto.capabilities.scheduler import SchedulerCapability
from pylotto.capabilities.scheduler.delay_queue import DelayQueue
from pylotto.capabilities.secrets import SecretsCapability
from pylotto.capabilities.sequencer import SequencerCapability
from pylotto.capabilities.state import StateCapability
from pylotto.capabilities.workflows import Workflows
from pylotto.components.base import Component
from pylotto.core.registry import CAPABILITIES


class Service(Protocol):
    """What the runtime does with every service: start, stop, and (hot reload) detach and
    attach a component by name."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class ComponentService(Service, Protocol):
    async def detach(self, component_name: str) -> None: ...

    async def attach(self, component_name: str) -> None: ...


COMPONENTS = "components"
"""Field metadata: the registry capability whose components a service is built over (None:
a service without components, always given to the builder)."""


@dataclass(frozen=True, slots=True)
class CapabilityServices:
    """Every capability service of one sidecar, built once by :meth:`build`."""

    hello: HelloCapability = field(metadata={COMPONENTS: "hello"})
    secrets: SecretsCapability = field(metadata={COMPONENTS: "secretstores"})
    configuration: ConfigurationCapability = field(metadata={COMPONENTS: "configuration"})
    state: StateCapability = field(metadata={COMPONENTS: "state"})
    bindings: BindingsCapability = field(metadata={COMPONENTS: "bindings"})
    pubsub: PubSubCapability = field(metadata={COMPONENTS: "pubsub"})
    file: FileCapability = field(metadata={COMPONENTS: "file"})
    lock: LockCapability = field(metadata={COMPONENTS: "lock"})
    sequencer: SequencerCapability = field(metadata={COMPONENTS: "sequencer"})
    email: EmailCapability = field(metadata={COMPONENTS: "email"})
    oss: OssCapability = field(metadata={COMPONENTS: "oss"})
    crypto: CryptoCapability = field(metadata={COMPONENTS: "crypto"})
    scheduler: SchedulerCapability = field(metadata={COMPONENTS: None})
    delay_queue: DelayQueue = field(metadata={COMPONENTS: None})
    invoke: InvokeCapability = field(metadata={COMPONENTS: None})
    actors: Actors = field(metadata={COMPONENTS: None})
    """Dapr's virtual actors (``ActorsCapability``; ``DisabledActors`` without an actor
    state store). Last: it stops first, deactivating its actors through the app channels
    before invocation closes them."""
    workflows: Workflows = field(metadata={COMPONENTS: None})
    """Dapr workflows on the actor runtime (``WorkflowsCapability``; ``DisabledWorkflows``
    without an actor state store). After the actors: it attaches its internal actor host to
    them, and stops before them."""

    @property
    def context(self) -> RuntimeContext:
        """The app's settings and the data folder, as every service sees them."""
        return self.invoke.context

    @classmethod
    def build(cls, tables: Mapping[str, dict[str, Component]], context: RuntimeContext,
              policies: Policies, **given: Any) -> CapabilityServices:
        """The services over the component ``tables`` (registry capability → name →
        component; each service looks components up in its table, so a hot reload that
        changes a table is seen at once). A service named in ``given`` is taken as it is
        (one built with more than its components, context and ``policies``); every other
        one is ``Class(ComponentSet(label, table), context, **policies)``."""
        hints = get_type_hints(cls)
        built: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in given:
                built[f.name] = given.pop(f.name)
                continue
            registry_name = f.metadata[COMPONENTS]
            if registry_name is None:
                raise TypeError(f"CapabilityServices.build needs {f.name}=... (no components)")
            components = ComponentSet(CAPABILITIES[registry_name].label, tables[registry_name],
                                      registry_name)
            built[f.name] = hints[f.name](components, context, **policies)
        if given:
            raise TypeError(f"CapabilityServices.build: unknown services {sorted(given)}")
        services = cls(**built)
        services.state.publish = services.pubsub.publish  # the transactional outbox's way out
        services.state.pubsub_exists = services.pubsub.components.get
        return services

    def in_start_order(self) -> Iterator[Service]:
        """The services in the order they start (stop: reversed)."""
        for f in fields(self):
            yield getattr(self, f.name)

    def serving(self, registry_name: str) -> ComponentService:
        """The service over the components of registry capability ``registry_name``
        (``"secretstores"`` → :attr:`secrets`); KeyError for a name no service serves."""
        for f in fields(self):
            if f.metadata[COMPONENTS] == registry_name:
                service: ComponentService = getattr(self, f.name)
                return service
        raise KeyError(registry_name)
