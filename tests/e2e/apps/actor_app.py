"""A Dapr actor app written only against the official Python SDK, modelled on dapr/python-sdk
examples/demo_actor: ``DemoActor`` with state, a reentrant self-call through ``ActorProxy``
and a failing method, hosted by the FastAPI extension (``--transport http``) or by the SDK's
``ActorGrpcHost`` over the ``SubscribeActorEventsAlpha1`` stream (``--transport grpc``).

What the actors live through is appended, one JSON line per event, to ``--events`` (the test
reads it): ``activate`` and ``deactivate`` with the actor id.

Run: ``python actor_app.py --port P --events FILE [--transport http|grpc] [--idle SECONDS]``
with ``DAPR_HTTP_PORT`` / ``DAPR_GRPC_PORT`` in the environment (as ``dapr run`` sets them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from dapr.actor import Actor, ActorInterface, ActorProxy, Remindable, actormethod
from dapr.actor.runtime.config import ActorReentrancyConfig, ActorRuntimeConfig
from dapr.actor.runtime.runtime import ActorRuntime

EVENTS: Path | None = None


def record(kind: str, actor_id: str, **more: str) -> None:
    assert EVENTS is not None
    with EVENTS.open("a") as out:
        out.write(json.dumps({"event": kind, "id": actor_id, **more}) + "\n")


class DemoActorInterface(ActorInterface):
    @actormethod(name="GetMyData")  # type: ignore[untyped-decorator]
    async def get_my_data(self) -> object: ...

    @actormethod(name="SetMyData")  # type: ignore[untyped-decorator]
    async def set_my_data(self, data: object) -> None: ...

    @actormethod(name="CallSelf")  # type: ignore[untyped-decorator]
    async def call_self(self) -> object: ...

    @actormethod(name="Boom")  # type: ignore[untyped-decorator]
    async def boom(self) -> None: ...

    @actormethod(name="StartReminder")  # type: ignore[untyped-decorator]
    async def start_reminder(self) -> None: ...

    @actormethod(name="StopReminder")  # type: ignore[untyped-decorator]
    async def stop_reminder(self) -> None: ...

    @actormethod(name="StartTimer")  # type: ignore[untyped-decorator]
    async def start_timer(self) -> None: ...

    @actormethod(name="StopTimer")  # type: ignore[untyped-decorator]
    async def stop_timer(self) -> None: ...


class DemoActor(Actor, DemoActorInterface, Remindable):
    async def _on_activate(self) -> None:
        record("activate", self.id.id)

    async def _on_deactivate(self) -> None:
        record("deactivate", self.id.id)

    async def get_my_data(self) -> object:
        found, value = await self._state_manager.try_get_state("mydata")
        return value if found else None

    async def set_my_data(self, data: object) -> None:
        await self._state_manager.set_state("mydata", data)
        await self._state_manager.save_state()

    async def call_self(self) -> object:
        """Calls this same actor from inside its turn: works only with reentrancy (the SDK
        sends the turn's Dapr-Reentrancy-Id on the nested call)."""
        proxy = ActorProxy.create("DemoActor", self.id, DemoActorInterface)
        inner = await proxy.GetMyData()
        return {"inner": inner}

    async def boom(self) -> None:
        raise ValueError("boom from the actor")

    async def start_reminder(self) -> None:
        await self.register_reminder("demo_reminder", b"reminder state",
                                     timedelta(seconds=0.5), timedelta(seconds=1))

    async def stop_reminder(self) -> None:
        await self.unregister_reminder("demo_reminder")

    async def receive_reminder(self, name: str, state: bytes, due_time: timedelta,
                               period: timedelta, ttl: timedelta | None = None) -> None:
        record("reminder", self.id.id, name=name, state=state.decode())

    async def start_timer(self) -> None:
        await self.register_timer("demo_timer", self.timer_callback, {"from": "timer"},
                                  timedelta(seconds=0.5), timedelta(seconds=1))

    async def stop_timer(self) -> None:
        await self.unregister_timer("demo_timer")

    async def timer_callback(self, state: object) -> None:
        record("timer", self.id.id, state=json.dumps(state))


def actor_config(idle: float) -> ActorRuntimeConfig:
    return ActorRuntimeConfig(actor_idle_timeout=timedelta(seconds=idle),
                              actor_scan_interval=timedelta(seconds=1),
                              reentrancy=ActorReentrancyConfig(enabled=True))


def run_http(port: int) -> None:
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    import uvicorn
    from dapr.ext.fastapi import DaprActor
    from fastapi import FastAPI

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await actor.register_actor(DemoActor)
        yield

    app = FastAPI(title="DemoActor", lifespan=lifespan)
    actor = DaprActor(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def run_grpc(port: int) -> None:
    from dapr.actor.runtime.grpc_host import ActorGrpcHost

    host = ActorGrpcHost(app_port=port)
    await host.register_actor(DemoActor)
    await host.run_forever()


def main(argv: list[str] | None = None) -> None:
    global EVENTS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--transport", choices=("http", "grpc"), default="http")
    parser.add_argument("--idle", type=float, default=3600.0)
    args: Any = parser.parse_args(argv)
    EVENTS = args.events
    ActorRuntime.set_actor_config(actor_config(args.idle))
    if args.transport == "http":
        run_http(args.port)
    else:
        asyncio.run(run_grpc(args.port))


if __name__ == "__main__":
    main()
