"""``pylotto.v1.SidecarActors``: the target side of actor calls between sidecars (served on
the port ``SidecarInvoke`` is: the gRPC API port, or the internal mTLS port).

Each call or tick runs on :class:`~pylotto.capabilities.actors.forwarding.ForwardedActors`
(placement asked, then the local runtime); an error is answered with its code from the one
table and its ``where`` in a trailer (``forwarding.for_caller``), "moved" as UNAVAILABLE
``actor moved``.
"""

from __future__ import annotations

from typing import Any

import grpc

from pylotto.capabilities.actors.api import ActorRef, LocalActors
from pylotto.capabilities.actors.forwarding import (
    ERROR_TRAILER,
    answer_to_wire,
    call_from_wire,
    for_caller,
    outcome_to_wire,
    tick_from_wire,
)
from pylotto.core.errors import PylottoError, Unavailable, grpc_code
from pylotto.proto.extensions import actors_pb2, actors_pb2_grpc

SERVICE = actors_pb2.DESCRIPTOR.services_by_name["SidecarActors"].full_name


async def _abort(context: grpc.aio.ServicerContext[Any, Any], err: PylottoError,
                 actor: ActorRef) -> None:
    answered, trailer = for_caller(err, actor)
    await context.abort(grpc_code(answered), answered.message,
                        trailing_metadata=((ERROR_TRAILER, trailer),))


class SidecarActorsServicer(actors_pb2_grpc.SidecarActorsServicer):
    """``local``: this sidecar's actors as forwarded calls reach them (None: no actor
    runtime here: every call is answered "moved")."""

    def __init__(self, local: LocalActors | None) -> None:
        self.local = local

    def _runtime(self) -> LocalActors:
        if self.local is None:
            raise Unavailable("this sidecar runs no actors", where="actors.disabled")
        return self.local

    async def CallActor(self, request: actors_pb2.ActorCall,
                        context: grpc.aio.ServicerContext[Any, Any]) -> actors_pb2.ActorAnswer:
        call = call_from_wire(request)
        try:
            return answer_to_wire(await self._runtime().run(call))
        except PylottoError as err:
            await _abort(context, err, call.actor)
            raise  # not reached: abort raises

    async def FireActor(self, request: actors_pb2.ActorTick,
                        context: grpc.aio.ServicerContext[Any, Any]
                        ) -> actors_pb2.ActorTickOutcome:
        actor = ActorRef(request.actor_type, request.actor_id)
        try:
            return outcome_to_wire(await self._runtime().run_tick(tick_from_wire(request)))
        except PylottoError as err:
            await _abort(context, err, actor)
            raise
