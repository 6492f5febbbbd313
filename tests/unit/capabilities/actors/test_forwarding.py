"""Actor calls between sidecars over the real gRPC transport, in one process: the
``SidecarActors`` servicer in front of a recording runtime, :class:`SidecarForwarder` as the
caller. Calls, answers and ticks cross whole; errors keep their kind and ``where``; "moved"
comes back as Unavailable at MOVED; a sidecar down or without actors is Unavailable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import pytest

from pylotto.capabilities.actors.api import (
    MOVED,
    ActorAnswer,
    ActorCall,
    ActorRef,
    LocalActors,
    Location,
    Placement,
    PlacementListener,
    Tick,
    TickKind,
    TickOutcome,
)
from pylotto.capabilities.actors.forwarding import ForwardedActors, SidecarForwarder
from pylotto.core.errors import NotFound, PylottoError, ResourceExhausted, Unavailable
from pylotto.facades.actors_internal import SidecarActorsServicer
from pylotto.proto.extensions import actors_pb2_grpc
from tests.support.ports import free_port

ACTOR = ActorRef("Counter", "7")


@dataclass
class Recording(LocalActors):
    calls: list[ActorCall] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    fail: PylottoError | None = None

    async def run(self, call: ActorCall) -> ActorAnswer:
        self.calls.append(call)
        if self.fail is not None:
            raise self.fail
        return ActorAnswer(status=207, data=b"out:" + call.data, content_type="text/plain",
                           headers=(("x-answer", "1"),), actor_error=True)

    async def run_tick(self, tick: Tick) -> TickOutcome:
        self.ticks.append(tick)
        if self.fail is not None:
            raise self.fail
        return TickOutcome(delivered=True, cancel=tick.name == "last")


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[LocalActors | None], object]]:
    servers: list[grpc.aio.Server] = []

    async def start(local: LocalActors | None) -> str:
        server = grpc.aio.server()
        actors_pb2_grpc.add_SidecarActorsServicer_to_server(SidecarActorsServicer(local), server)
        address = f"127.0.0.1:{free_port()}"
        server.add_insecure_port(address)
        await server.start()
        servers.append(server)
        return address

    yield start
    for server in servers:
        await server.stop(None)


@pytest.fixture
async def forwarder() -> AsyncIterator[SidecarForwarder]:
    made = SidecarForwarder(timeout=10)
    yield made
    await made.close()


async def test_a_call_and_its_answer_cross_whole(serve: Callable[..., object],
                                                forwarder: SidecarForwarder) -> None:
    local = Recording()
    address = await serve(local)  # type: ignore[misc]
    call = ActorCall(ACTOR, "Bump", data=b"\x00in", content_type="application/json",
                     headers=(("x-a", "1"), ("x-b", "2")), reentrancy_id="r-1",
                     query="a=1&b=%20")
    answer = await forwarder.call(address, call)
    assert answer == ActorAnswer(status=207, data=b"out:\x00in", content_type="text/plain",
                                 headers=(("x-answer", "1"),), actor_error=True)
    (got,) = local.calls
    assert got.actor == ACTOR and got.method == "Bump" and got.data == b"\x00in"
    assert got.headers == call.headers and got.reentrancy_id == "r-1" and got.forwarded
    assert got.query == "a=1&b=%20"
    await forwarder.call(address, ActorCall(ACTOR, "Get"))
    assert local.calls[1].reentrancy_id is None  # absent stays absent, not ""


async def test_a_tick_and_its_outcome_cross_whole(serve: Callable[..., object],
                                                 forwarder: SidecarForwarder) -> None:
    local = Recording()
    address = await serve(local)  # type: ignore[misc]
    tick = Tick(ACTOR, TickKind.TIMER, "last", due_time="1s", period="2s", data=b'{"a":1}',
                callback="OnTimer")
    assert await forwarder.fire(address, tick) == TickOutcome(delivered=True, cancel=True)
    assert local.ticks == [tick]


async def test_moved_comes_back_as_unavailable_at_moved(serve: Callable[..., object],
                                                       forwarder: SidecarForwarder) -> None:
    local = Recording(fail=Unavailable("not here", where=MOVED))
    address = await serve(local)  # type: ignore[misc]
    with pytest.raises(Unavailable) as caught:
        await forwarder.call(address, ActorCall(ACTOR, "Bump"))
    assert caught.value.where == MOVED and caught.value.message == "actor moved"
    # a runtime shutting down there is "moved" too: the caller looks again
    local.fail = Unavailable("actor runtime is closed", where="actors.closed")
    with pytest.raises(Unavailable) as closed:
        await forwarder.fire(address, Tick(ACTOR, TickKind.REMINDER, "r"))
    assert closed.value.where == MOVED
    # and so is a sidecar that runs no actors
    bare = await serve(None)  # type: ignore[misc]
    with pytest.raises(Unavailable) as none:
        await forwarder.call(bare, ActorCall(ACTOR, "Bump"))
    assert none.value.where == MOVED


async def test_other_errors_keep_their_kind_where_and_fields(
        serve: Callable[..., object], forwarder: SidecarForwarder) -> None:
    local = Recording(fail=ResourceExhausted("maximum stack depth exceeded",
                                             where="actors.stack_depth", actor=ACTOR.key))
    address = await serve(local)  # type: ignore[misc]
    with pytest.raises(ResourceExhausted) as caught:
        await forwarder.call(address, ActorCall(ACTOR, "Bump"))
    assert caught.value.where == "actors.stack_depth"
    assert caught.value.message == "maximum stack depth exceeded"
    assert caught.value.fields == {"actor": ACTOR.key}
    local.fail = NotFound("actor method not found: /actors/Counter/7/method/Nope",
                          where="actors.invoke")
    with pytest.raises(NotFound) as missing:
        await forwarder.call(address, ActorCall(ACTOR, "Nope"))
    assert missing.value.where == "actors.invoke"


async def test_a_sidecar_that_is_down_is_unavailable(forwarder: SidecarForwarder) -> None:
    with pytest.raises(Unavailable) as caught:
        await forwarder.call(f"127.0.0.1:{free_port()}", ActorCall(ACTOR, "Bump"))
    assert caught.value.where != MOVED


@dataclass
class FixedPlacement(Placement):
    where: Location | None

    async def start(self, hosted: object, listener: PlacementListener) -> None: ...

    async def update(self, hosted: object) -> None: ...

    async def stop(self) -> None: ...

    async def locate(self, actor: ActorRef) -> Location:
        if self.where is None:
            raise NotFound(f"did not find address for actor '{actor.key}'")
        return self.where

    def owns(self, actor: ActorRef) -> bool:
        return self.where is not None and self.where.local

    @property
    def connected(self) -> bool:
        return True

    @property
    def ready(self) -> bool:
        return True


@pytest.mark.parametrize("where", [Location(False, "10.0.0.2:50001"), None])
async def test_what_placement_does_not_give_here_is_moved_never_forwarded(
        where: Location | None) -> None:
    local = Recording()
    forwarded = ForwardedActors(FixedPlacement(where), local)
    with pytest.raises(Unavailable) as caught:
        await forwarded.run(ActorCall(ACTOR, "Bump", forwarded=True))
    assert caught.value.where == MOVED
    with pytest.raises(Unavailable):
        await forwarded.run_tick(Tick(ACTOR, TickKind.TIMER, "t"))
    assert local.calls == [] and local.ticks == []
    here = ForwardedActors(FixedPlacement(Location(True)), local)
    assert (await here.run(ActorCall(ACTOR, "Bump"))).status == 207
