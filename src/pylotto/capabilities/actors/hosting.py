"""An HTTP app's actor types, attached once the app answers (docs/design/actors.md §1.1).

daprd asks ``GET /dapr/config`` once the app channel is up. The sidecar starts before its app
may listen, so :class:`AttachingActors` starts the actor runtime and asks in the background,
with backoff, until the app answers; then it attaches the host (an app whose config names no
types hosts none, and is not attached). Every other call goes straight to the runtime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from pylotto.capabilities.actors.api import (
    ActorAnswer,
    ActorCall,
    ActorHost,
    ActorRef,
    Actors,
    ActorStatus,
    Reminder,
    ReminderSpec,
    StateOperation,
    TimerSpec,
)
from pylotto.core.errors import DeadlineExceeded, PylottoError, Unavailable
from pylotto.core.tasks import stop_task

log = logging.getLogger("pylotto.actors")

FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 2.0


class AttachingActors(Actors):
    """``inner`` (the actor runtime, with ``start`` and ``stop``) and ``host`` attached to it
    as soon as the app answers (see the module's docstring)."""

    def __init__(self, inner: Actors, host: ActorHost | None) -> None:
        self.inner = inner
        self.host = host
        self.attached = asyncio.Event()
        """Set once the app answered (attached or not: it hosts no types)."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.inner.start()  # type: ignore[attr-defined]
        if self.host is not None:
            self._task = asyncio.create_task(self._attach(self.host), name="actors: attach app")
        else:
            self.attached.set()

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        await self.inner.stop()  # type: ignore[attr-defined]

    async def _attach(self, host: ActorHost) -> None:
        delay = FIRST_DELAY_SECONDS
        first = True
        while True:
            try:
                types: Mapping[str, object] = await host.hosted()
                break
            except (Unavailable, DeadlineExceeded) as exc:
                log.log(logging.INFO if first else logging.DEBUG,
                        "%s not reachable yet (%s): asking for its actor types in the "
                        "background", host.description, exc.message)
                first = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_SECONDS)
            except PylottoError as exc:
                log.error("%s: its actor types could not be read: %s", host.description,
                          exc.message)
                self.attached.set()
                return
        if not types:
            log.info("%s hosts no actor types", host.description)
            self.attached.set()
            return
        try:
            await self.inner.attach(host)
        except PylottoError as exc:
            log.error("%s: its actor types (%s) could not be attached: %s", host.description,
                      ", ".join(sorted(types)), exc.message)
        else:
            log.info("%s hosts actor types %s", host.description, ", ".join(sorted(types)))
        self.attached.set()

    async def invoke(self, call: ActorCall) -> ActorAnswer:
        return await self.inner.invoke(call)

    async def get_state(self, actor: ActorRef, key: str) -> tuple[bytes | None,
                                                                 Mapping[str, str]]:
        return await self.inner.get_state(actor, key)

    async def transact(self, actor: ActorRef, operations: list[StateOperation]) -> None:
        await self.inner.transact(actor, operations)

    async def register_timer(self, actor: ActorRef, name: str, spec: TimerSpec) -> None:
        await self.inner.register_timer(actor, name, spec)

    async def unregister_timer(self, actor: ActorRef, name: str) -> None:
        await self.inner.unregister_timer(actor, name)

    async def register_reminder(self, actor: ActorRef, name: str, spec: ReminderSpec,
                                overwrite: bool = True) -> None:
        await self.inner.register_reminder(actor, name, spec, overwrite)

    async def unregister_reminder(self, actor: ActorRef, name: str) -> None:
        await self.inner.unregister_reminder(actor, name)

    async def get_reminder(self, actor: ActorRef, name: str) -> Reminder:
        return await self.inner.get_reminder(actor, name)

    async def list_reminders(self, actor_type: str, actor_id: str | None) -> list[Reminder]:
        return await self.inner.list_reminders(actor_type, actor_id)

    async def unregister_reminders(self, actor_type: str, actor_id: str | None) -> None:
        await self.inner.unregister_reminders(actor_type, actor_id)

    async def attach(self, host: ActorHost) -> None:
        await self.inner.attach(host)

    async def detach(self, host: ActorHost) -> None:
        await self.inner.detach(host)

    def status(self) -> ActorStatus:
        return self.inner.status()
