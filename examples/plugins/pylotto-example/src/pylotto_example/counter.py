"""API plugin ``counter``: the gRPC service ``pylotto_example.v1.Counter``.

- ``Next(store_name, key)``: the next id from a sequencer store (``context.sequencer``);
- ``Add(store_name, key, delta)``: adds to a counter kept in a state store
  (``context.state``), with an etag compare-and-set retried on conflict.

It also adds ``POST /v1.0-plugins/counter/{store}/{key}`` (body: the delta as a decimal
number) to the Dapr HTTP API. Errors are pylotto errors (e.g. ``ComponentNotFound`` for an
unknown store), which the sidecar maps to gRPC/HTTP status like its own APIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from aiohttp import web

from pylotto.capabilities.sequencer import Increment
from pylotto.capabilities.state import StateItem
from pylotto.components.state.base import Concurrency
from pylotto.core.errors import EtagMismatch, Internal, InvalidArgument
from pylotto.plugins import ApiPlugin, PluginContext
from pylotto_example.v1 import counter_pb2, counter_pb2_grpc

SERVICE = counter_pb2.DESCRIPTOR.services_by_name["Counter"].full_name
MAX_ATTEMPTS = 100


class Counters:
    """The plugin's logic, on the capability layer only (shared by the gRPC and HTTP APIs)."""

    def __init__(self, context: PluginContext) -> None:
        self.context = context

    async def next(self, store_name: str, key: str) -> int:
        return await self.context.sequencer.get_next_id(store_name, key, Increment.STRONG)

    async def add(self, store_name: str, key: str, delta: int) -> int:
        if not key:
            raise InvalidArgument("counter key is empty")
        state = self.context.state
        for _ in range(MAX_ATTEMPTS):
            got = await state.get_state(store_name, key)
            try:
                total = int(got.value or b"0") + delta
            except ValueError:
                raise InvalidArgument(f"{key!r} does not hold a counter") from None
            try:
                await state.save_state(store_name, [StateItem(
                    key, str(total).encode(), etag=got.etag,
                    concurrency=_first_write_when(got.etag))])
            except EtagMismatch:
                continue  # another writer won: read again
            return total
        raise Internal(f"counter {key!r}: too many concurrent updates")


def _first_write_when(etag: str | None) -> Concurrency:
    """A new counter must not overwrite one created meanwhile: first-write when no etag."""
    return Concurrency.FIRST_WRITE if etag is None else Concurrency.UNSPECIFIED


class CounterServicer(counter_pb2_grpc.CounterServicer):
    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    async def Next(self, request: counter_pb2.NextRequest,
                   context: grpc.aio.ServicerContext[Any, Any]) -> counter_pb2.CountReply:
        return counter_pb2.CountReply(
            value=await self.counters.next(request.store_name, request.key))

    async def Add(self, request: counter_pb2.AddRequest,
                  context: grpc.aio.ServicerContext[Any, Any]) -> counter_pb2.CountReply:
        return counter_pb2.CountReply(
            value=await self.counters.add(request.store_name, request.key, request.delta))


class CounterPlugin(ApiPlugin):
    version = "0.1.0"

    def __init__(self, context: PluginContext) -> None:
        super().__init__(context)
        self.counters = Counters(context)

    def add_grpc(self, server: grpc.aio.Server) -> Sequence[str]:
        counter_pb2_grpc.add_CounterServicer_to_server(CounterServicer(self.counters), server)
        return [SERVICE]

    def add_http(self, app: web.Application) -> None:
        app.router.add_post("/v1.0-plugins/counter/{store}/{key}", self._http_add)

    async def _http_add(self, request: web.Request) -> web.Response:
        body = (await request.text()).strip() or "1"
        try:
            delta = int(body)
        except ValueError:
            raise InvalidArgument(f"the body must be a whole number, got {body!r}") from None
        total = await self.counters.add(request.match_info["store"], request.match_info["key"],
                                        delta)
        return web.json_response({"value": total})
