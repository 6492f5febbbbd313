"""One sidecar: every actor of a type its app hosts lives here (no other member to ask)."""

from __future__ import annotations

from collections.abc import Mapping

from pylotto.capabilities.actors.api import (
    ActorRef,
    EntityConfig,
    Location,
    Placement,
    PlacementListener,
)
from pylotto.capabilities.actors.router import no_address

HERE = Location(local=True)


class SingleMember(Placement):
    """The placement of a sidecar alone: ``locate`` answers "here" for a hosted type and
    daprd's "did not find address" NotFound for any other; connected and ready once
    started."""

    def __init__(self) -> None:
        self._hosted: frozenset[str] = frozenset()
        self._started = False
        self._listener: PlacementListener | None = None

    async def start(self, hosted: Mapping[str, EntityConfig],
                    listener: PlacementListener) -> None:
        self._hosted = frozenset(hosted)
        self._listener = listener
        self._started = True

    async def update(self, hosted: Mapping[str, EntityConfig]) -> None:
        self._hosted = frozenset(hosted)
        if self._listener is not None:
            kept = self._hosted
            await self._listener.halt(lambda actor: actor.type in kept, drain=True)

    async def stop(self) -> None:
        self._started = False
        if self._listener is not None:
            await self._listener.halt(lambda actor: False, drain=True)

    async def locate(self, actor: ActorRef) -> Location:
        if actor.type in self._hosted:
            return HERE
        raise no_address(actor)

    def owns(self, actor: ActorRef) -> bool:
        return self._started and actor.type in self._hosted

    @property
    def connected(self) -> bool:
        return self._started

    @property
    def ready(self) -> bool:
        return self._started
