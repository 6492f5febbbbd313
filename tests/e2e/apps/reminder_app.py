"""An actor app for the reminder-restart test, written only against the official Python SDK
(FastAPI ``DaprActor``): ``Ticker`` actors that record every reminder tick they receive.

Each tick is one JSON line ``{"t", "id", "name", "app"}`` (wall-clock time, the actor id, the
reminder name, ``--name``) pushed to the Redis list ``<ns>:ticks``, which every copy of the
app writes to (the test reads it).

Run: ``python reminder_app.py --port P --name NAME --ns NS`` with ``DAPR_HTTP_PORT`` set.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import redis.asyncio as redis
import uvicorn
from dapr.actor import Actor, ActorInterface, Remindable, actormethod
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI

NAME = ""
NS = ""
STORE: redis.Redis | None = None


class TickerInterface(ActorInterface):
    @actormethod(name="Ping")  # type: ignore[untyped-decorator]
    async def ping(self) -> None: ...


class Ticker(Actor, TickerInterface, Remindable):
    async def ping(self) -> None:
        return None

    async def receive_reminder(self, name: str, state: bytes, due_time: timedelta,
                               period: timedelta, ttl: timedelta | None = None) -> None:
        assert STORE is not None
        await STORE.rpush(f"{NS}:ticks", json.dumps(
            {"t": time.time(), "id": self.id.id, "name": name, "app": NAME}))


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
        await actor.register_actor(Ticker)
        yield

    app = FastAPI(title="Ticker", lifespan=lifespan)
    actor = DaprActor(app)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
