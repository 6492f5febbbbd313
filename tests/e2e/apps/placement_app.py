"""An actor app for the placement test, written only against the official Python SDK (FastAPI
``DaprActor``): ``Counter`` actors whose ``Bump`` adds one to a counter in actor state.

What the actors live through goes to Redis under ``--ns`` (the test reads it):

- ``<ns>:events``: one JSON line per activation and deactivation, ``{"t", "e", "id", "app"}``
  (wall-clock time, ``activate``/``deactivate``, the actor id, ``--name``);
- ``<ns>:in:<id>``: how many ``Bump`` turns of the actor run at this moment, over all apps;
  a turn that finds another one running adds a line to ``<ns>:overlaps``.

Run: ``python placement_app.py --port P --name NAME --ns NS`` with ``DAPR_HTTP_PORT`` set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
import uvicorn
from dapr.actor import Actor, ActorInterface, actormethod
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI

NAME = ""
NS = ""
STORE: redis.Redis | None = None


def store() -> redis.Redis:
    assert STORE is not None
    return STORE


async def event(kind: str, actor_id: str) -> None:
    await store().rpush(f"{NS}:events", json.dumps(
        {"t": time.time(), "e": kind, "id": actor_id, "app": NAME}))


class CounterInterface(ActorInterface):
    @actormethod(name="Bump")  # type: ignore[untyped-decorator]
    async def bump(self) -> int: ...

    @actormethod(name="Get")  # type: ignore[untyped-decorator]
    async def get(self) -> int: ...


class Counter(Actor, CounterInterface):
    async def _on_activate(self) -> None:
        await event("activate", self.id.id)

    async def _on_deactivate(self) -> None:
        await event("deactivate", self.id.id)

    async def bump(self) -> int:
        running = f"{NS}:in:{self.id.id}"
        if await store().incr(running) > 1:
            await store().rpush(f"{NS}:overlaps", json.dumps(
                {"t": time.time(), "id": self.id.id, "app": NAME}))
        try:
            await asyncio.sleep(0.005)
            found, value = await self._state_manager.try_get_state("count")
            count = (int(value) if found else 0) + 1
            await self._state_manager.set_state("count", count)
            await self._state_manager.save_state()
            return count
        finally:
            await store().decr(running)

    async def get(self) -> int:
        found, value = await self._state_manager.try_get_state("count")
        return int(value) if found else 0


def main() -> None:
    global NAME, NS, STORE
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--ns", required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args: Any = parser.parse_args()
    NAME, NS = args.name, args.ns
    STORE = redis.Redis.from_url(args.redis)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await actor.register_actor(Counter)
        yield

    app = FastAPI(title="Counter", lifespan=lifespan)
    actor = DaprActor(app)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
