"""An in-process app hosting actor types, for the runtime's tests (the app side of
:class:`~pylotto.capabilities.actors.api.ActorHost`; the runtime under test is real).

It records what an app would see: every call and tick, how many turns of one actor run at
once, and every deactivation. A method ``handler`` may be given per method name to act like
the app (call back into the sidecar, sleep, fail)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from pylotto.capabilities.actors.api import (
    ActorAnswer,
    ActorCall,
    ActorHost,
    ActorRef,
    EntityConfig,
    Tick,
    TickOutcome,
)

Handler = Callable[[ActorCall, str | None], Awaitable[ActorAnswer]]


@dataclass
class Seen:
    calls: list[tuple[ActorRef, str, str | None]] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    deactivated: list[ActorRef] = field(default_factory=list)
    inside: dict[ActorRef, int] = field(default_factory=dict)
    most: dict[ActorRef, int] = field(default_factory=dict)
    deactivating: set[ActorRef] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    """A turn that ran while its actor was being deactivated, or a deactivation during a
    turn: what the runtime must never do."""


class RecordingHost(ActorHost):
    def __init__(self, types: Mapping[str, EntityConfig], *,
                 handlers: Mapping[str, Handler] | None = None,
                 description: str = "test app") -> None:
        self.types = dict(types)
        self.handlers = dict(handlers or {})
        self.description = description
        self.seen = Seen()
        self.deactivation_started = asyncio.Event()

    async def hosted(self) -> Mapping[str, EntityConfig]:
        return dict(self.types)

    def _enter(self, actor: ActorRef) -> None:
        if actor in self.seen.deactivating:
            self.seen.violations.append(f"turn of {actor.key} during its deactivation")
        now = self.seen.inside.get(actor, 0) + 1
        self.seen.inside[actor] = now
        self.seen.most[actor] = max(self.seen.most.get(actor, 0), now)

    def _leave(self, actor: ActorRef) -> None:
        self.seen.inside[actor] -= 1

    async def invoke(self, call: ActorCall, reentrancy_id: str | None) -> ActorAnswer:
        self.seen.calls.append((call.actor, call.method, reentrancy_id))
        self._enter(call.actor)
        try:
            handler = self.handlers.get(call.method)
            if handler is not None:
                return await handler(call, reentrancy_id)
            await asyncio.sleep(0)
            return ActorAnswer(data=b"echo:" + call.data, content_type="text/plain")
        finally:
            self._leave(call.actor)

    async def tick(self, tick: Tick) -> TickOutcome:
        self.seen.ticks.append(tick)
        self._enter(tick.actor)
        try:
            await asyncio.sleep(0)
            return TickOutcome(delivered=True)
        finally:
            self._leave(tick.actor)

    async def deactivate(self, actor: ActorRef) -> bool:
        self.deactivation_started.set()
        if self.seen.inside.get(actor, 0):
            self.seen.violations.append(f"deactivation of {actor.key} during a turn")
        self.seen.deactivating.add(actor)
        try:
            await asyncio.sleep(0.001)  # as an app's DELETE takes a moment
            self.seen.deactivated.append(actor)
        finally:
            self.seen.deactivating.discard(actor)
        return True


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``condition()`` holds (a deadline, never a bare sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
