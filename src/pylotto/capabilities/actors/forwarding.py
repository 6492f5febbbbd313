"""Actor calls between sidecars (docs/design/actors.md §4.1 "Forwarding"): the
``pylotto.v1.SidecarActors`` gRPC service of ``proto/extensions/actors.proto``.

- :class:`SidecarForwarder` is the :class:`Forwarder` the router sends calls and ticks with to
  the sidecar placement names (the other sidecar's internal gRPC address: its API port, or
  its mTLS internal port with credentials).
- :class:`ForwardedActors` is the :class:`LocalActors` the target's servicer
  (``facades/actors_internal.py``) runs what it receives on: placement is asked first, which
  waits while the actor's partition is being handed over to this sidecar; an actor that is
  not (or no longer) here answers "moved", and is never forwarded further.
- Errors cross as their gRPC code (the one table in ``core/errors.py``) and message, with
  their ``where`` and fields in the ``pylotto-actor-error`` trailer, so the calling sidecar
  raises the same :class:`PylottoError` the target did. "Moved" travels as UNAVAILABLE with
  the message ``actor moved``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from pylotto.appchannel.sidecars import sidecar_channel
from pylotto.capabilities.actors.api import (
    MOVED,
    ActorAnswer,
    ActorCall,
    ActorRef,
    Forwarder,
    LocalActors,
    Placement,
    Tick,
    TickKind,
    TickOutcome,
)
from pylotto.core.errors import NotFound, PylottoError, Unavailable, from_grpc_code
from pylotto.observability.tracing import carrier_from
from pylotto.proto.extensions import actors_pb2, actors_pb2_grpc, invoke_pb2

MOVED_MESSAGE = "actor moved"
ERROR_TRAILER = "pylotto-actor-error"
"""JSON ``{"where", "fields"}`` of the error a target sidecar answered with."""
CALL_TIMEOUT_SECONDS = 300.0


# ---- messages --------------------------------------------------------------------------------


def _headers(pairs: Sequence[tuple[str, str]]) -> list[invoke_pb2.Header]:
    return [invoke_pb2.Header(key=k, value=v) for k, v in pairs]


def call_to_wire(call: ActorCall) -> actors_pb2.ActorCall:
    message = actors_pb2.ActorCall(
        actor_type=call.actor.type, actor_id=call.actor.id, method=call.method,
        data=call.data, content_type=call.content_type, headers=_headers(call.headers),
        query=call.query)
    if call.reentrancy_id is not None:
        message.reentrancy_id = call.reentrancy_id
    return message


def call_from_wire(message: actors_pb2.ActorCall) -> ActorCall:
    return ActorCall(
        ActorRef(message.actor_type, message.actor_id), message.method, data=message.data,
        content_type=message.content_type,
        headers=tuple((h.key, h.value) for h in message.headers),
        reentrancy_id=message.reentrancy_id if message.HasField("reentrancy_id") else None,
        query=message.query, forwarded=True)


def answer_to_wire(answer: ActorAnswer) -> actors_pb2.ActorAnswer:
    return actors_pb2.ActorAnswer(status=answer.status, data=answer.data,
                                  content_type=answer.content_type,
                                  headers=_headers(answer.headers),
                                  actor_error=answer.actor_error)


def answer_from_wire(message: actors_pb2.ActorAnswer) -> ActorAnswer:
    return ActorAnswer(status=message.status, data=message.data,
                       content_type=message.content_type,
                       headers=tuple((h.key, h.value) for h in message.headers),
                       actor_error=message.actor_error)


def tick_to_wire(tick: Tick) -> actors_pb2.ActorTick:
    return actors_pb2.ActorTick(
        actor_type=tick.actor.type, actor_id=tick.actor.id, kind=tick.kind.value,
        name=tick.name, due_time=tick.due_time, period=tick.period, data=tick.data,
        callback=tick.callback)


def tick_from_wire(message: actors_pb2.ActorTick) -> Tick:
    try:
        kind = TickKind(message.kind)
    except ValueError:
        raise Unavailable(f"unknown tick kind {message.kind!r}", where="actors.invoke") from None
    return Tick(ActorRef(message.actor_type, message.actor_id), kind, message.name,
                due_time=message.due_time, period=message.period, data=message.data,
                callback=message.callback)


def outcome_to_wire(outcome: TickOutcome) -> actors_pb2.ActorTickOutcome:
    return actors_pb2.ActorTickOutcome(delivered=outcome.delivered, cancel=outcome.cancel)


def outcome_from_wire(message: actors_pb2.ActorTickOutcome) -> TickOutcome:
    return TickOutcome(delivered=message.delivered, cancel=message.cancel)


# ---- errors ----------------------------------------------------------------------------------


def moved(actor: ActorRef) -> Unavailable:
    return Unavailable(MOVED_MESSAGE, where=MOVED, detail=MOVED_MESSAGE, actor=actor.key)


def for_caller(err: PylottoError, actor: ActorRef) -> tuple[PylottoError, str]:
    """The error a target sidecar answers for ``err`` (an actor that left, or a runtime
    shutting down, is "moved": the caller looks again), and its trailer."""
    if isinstance(err, Unavailable) and err.where in (MOVED, "actors.closed",
                                                      "actors.disabled"):
        err = moved(actor)
    return err, json.dumps({"where": err.where, "fields": err.fields})


def from_answer(exc: grpc.aio.AioRpcError, actor: ActorRef, address: str) -> PylottoError:
    """The :class:`PylottoError` a target sidecar answered ``exc`` for."""
    trailer = dict(exc.trailing_metadata() or ())
    raw = trailer.get(ERROR_TRAILER)
    where, fields = "", {}
    if isinstance(raw, str):
        try:
            doc = json.loads(raw)
            where = str(doc.get("where", ""))
            fields = {str(k): str(v) for k, v in dict(doc.get("fields", {})).items()}
        except (ValueError, AttributeError):
            pass
    details = exc.details() or ""
    if exc.code() == grpc.StatusCode.UNAVAILABLE and (where == MOVED or
                                                      details == MOVED_MESSAGE):
        return moved(actor)
    if not raw:  # not the servicer's answer: the sidecar is unreachable, or has no actors
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            return Unavailable(f"sidecar {address} serves no actors", actor=actor.key)
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return Unavailable(f"sidecar {address} of actor {actor.key}: {details}",
                               actor=actor.key)
        return from_grpc_code(exc.code(), details)
    err = from_grpc_code(exc.code(), details)
    err.where, err.fields = where, fields
    return err


# ---- the two ends ----------------------------------------------------------------------------


class SidecarForwarder(Forwarder):
    """gRPC client of the other sidecars' ``SidecarActors`` service. ``credentials``: (CA,
    certificate, key) PEM for mTLS to their internal port; None: plaintext."""

    def __init__(self, credentials: tuple[bytes, bytes, bytes] | None = None,
                 timeout: float = CALL_TIMEOUT_SECONDS) -> None:
        self.credentials, self.timeout = credentials, timeout
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, Any] = {}

    def _stub(self, address: str) -> Any:
        stub = self._stubs.get(address)
        if stub is None:
            channel = self._channels[address] = sidecar_channel(address, self.credentials)
            stub = self._stubs[address] = actors_pb2_grpc.SidecarActorsStub(channel)
        return stub

    async def call(self, address: str, call: ActorCall) -> ActorAnswer:
        trace = tuple(carrier_from(call.headers).items())
        try:
            answer = await self._stub(address).CallActor(call_to_wire(call),
                                                         timeout=self.timeout,
                                                         metadata=trace or None)
        except grpc.aio.AioRpcError as exc:
            raise from_answer(exc, call.actor, address) from None
        return answer_from_wire(answer)

    async def fire(self, address: str, tick: Tick) -> TickOutcome:
        try:
            outcome = await self._stub(address).FireActor(tick_to_wire(tick),
                                                          timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_answer(exc, tick.actor, address) from None
        return outcome_from_wire(outcome)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()


class ForwardedActors(LocalActors):
    """What another sidecar forwarded, run on ``local`` if ``placement`` gives the actor to
    this sidecar (waiting while it is handed over here), else answered "moved"."""

    def __init__(self, placement: Placement, local: LocalActors) -> None:
        self.placement, self.local = placement, local

    async def _here(self, actor: ActorRef) -> None:
        try:
            location = await self.placement.locate(actor)
        except NotFound:
            raise moved(actor) from None
        if not location.local:
            raise moved(actor)

    async def run(self, call: ActorCall) -> ActorAnswer:
        await self._here(call.actor)
        return await self.local.run(call)

    async def run_tick(self, tick: Tick) -> TickOutcome:
        await self._here(tick.actor)
        return await self.local.run_tick(tick)


def forwarded_actors(actors: object) -> LocalActors | None:
    """The :class:`ForwardedActors` of a sidecar's actor runtime (``services.actors``: an
    ``ActorsCapability``, possibly inside ``AttachingActors``); None when it has none."""
    from pylotto.capabilities.actors import ActorsCapability
    from pylotto.capabilities.actors.hosting import AttachingActors

    if isinstance(actors, AttachingActors):
        actors = actors.inner
    if not isinstance(actors, ActorsCapability):
        return None
    return ForwardedActors(actors.placement, actors.local)
