"""The contract every component fulfils, whatever its capability."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

from pylotto.core.metadata import ComponentSettings


@dataclass(frozen=True)
class ComponentContext:
    """What the runtime tells a component about where it lives."""

    app_id: str
    data_dir: Path
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("pylotto.component"))


class Component(abc.ABC):  # noqa: B024 - verbs come with each capability's base
    """A configured instance of a backend for one capability.

    Lifecycle: ``__init__`` (cheap, no I/O) → ``await init()`` (connect, create tables) →
    verbs → ``await close()``. ``ping()`` raises :class:`pylotto.core.errors.Unavailable` when the
    backend cannot be reached; the readiness probe calls it.
    """

    Settings: ClassVar[type[ComponentSettings]] = ComponentSettings
    features: ClassVar[frozenset[str]] = frozenset()
    per_process: ClassVar[bool] = False
    """Its data lives in the sidecar's process (or its ids depend on a per-sidecar setting):
    worker processes of one sidecar (``--workers``) would each see different data."""

    type_name: str = ""
    """The type it was configured with, as Dapr spells it (``state.redis``): set by the
    runtime that built it, for telemetry."""

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context

    async def init(self) -> None:  # noqa: B027 - optional hook
        """Connect to the backend. The default has nothing to do."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The default has nothing to do."""

    async def ping(self) -> None:  # noqa: B027 - optional hook
        """Raise Unavailable if the backend is down. Embedded components are always up."""

    def has(self, feature: str) -> bool:
        return feature in self.features


class BackendClient(Protocol):
    """What a component's connection helper offers (RedisClient, EtcdClient...)."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...


ClientT = TypeVar("ClientT", bound=BackendClient)


class ClientComponent(Component, Generic[ClientT]):
    """Mixin for a component whose lifecycle is its client's: ``init`` opens ``self.client``,
    ``close`` closes it, ``ping`` pings it. Put it before the capability's base class:
    ``class RedisLockStore(ClientComponent[RedisClient], LockStore)``."""

    client: ClientT

    async def init(self) -> None:
        await self.client.open()

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        await self.client.ping()


def cancel_requested() -> bool:
    """True when the running task was asked to stop, even if a driver swallowed the
    CancelledError and raised something else (redis-py, nats-py do): the caller must then
    stop too — re-raise a cancellation or end its loop — instead of treating it as an error
    and retrying, or whoever cancelled it (a timeout, a close, the loop's shutdown) waits on."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


ResultT = TypeVar("ResultT")


async def unless_cancelled(call: Awaitable[ResultT]) -> ResultT:
    """``await call``, then raise CancelledError if a cancellation came in meanwhile that the
    driver swallowed while answering anyway (redis-py and nats-py can): without this a
    cancelled loop goes on as if nothing happened (a closing subscription read on for ever)."""
    task = asyncio.current_task()
    cancels = task.cancelling() if task is not None else 0
    result = await call
    if task is not None and task.cancelling() > cancels:
        raise asyncio.CancelledError
    return result


