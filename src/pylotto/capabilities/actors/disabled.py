"""The actor runtime of a sidecar without actors: no state store is marked as the actor state
store, so every actor call answers daprd's ``ERR_ACTOR_RUNTIME_NOT_FOUND`` (the state store is
not configured to use the actor runtime...), and the metadata says ``DISABLED``."""

from __future__ import annotations

from typing import NoReturn

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
from pylotto.core.errors import NotConfigured

NO_STORE = ("no actor state store: mark one state store with metadata actorStateStore: "
            '"true" (or set actors.state_store)')


def _refuse() -> NoReturn:
    raise NotConfigured(NO_STORE, where="actors.runtime")


class DisabledActors(Actors):
    """Every call refused (see the module's docstring)."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def invoke(self, call: ActorCall) -> ActorAnswer:
        _refuse()

    async def get_state(self, actor: ActorRef, key: str) -> tuple[bytes | None,
                                                                 dict[str, str]]:
        _refuse()

    async def transact(self, actor: ActorRef, operations: list[StateOperation]) -> None:
        _refuse()

    async def register_timer(self, actor: ActorRef, name: str, spec: TimerSpec) -> None:
        _refuse()

    async def unregister_timer(self, actor: ActorRef, name: str) -> None:
        _refuse()

    async def register_reminder(self, actor: ActorRef, name: str, spec: ReminderSpec,
                                overwrite: bool = True) -> None:
        _refuse()

    async def unregister_reminder(self, actor: ActorRef, name: str) -> None:
        _refuse()

    async def get_reminder(self, actor: ActorRef, name: str) -> Reminder:
        _refuse()

    async def list_reminders(self, actor_type: str, actor_id: str | None) -> list[Reminder]:
        _refuse()

    async def unregister_reminders(self, actor_type: str, actor_id: str | None) -> None:
        _refuse()

    async def attach(self, host: ActorHost) -> None:
        _refuse()

    async def detach(self, host: ActorHost) -> None:
        return None

    def status(self) -> ActorStatus:
        return ActorStatus(runtime_status="DISABLED", active={}, host_ready=False,
                           placement="placement: disconnected")
