"""Dapr's actor RPCs (docs/design/actors.md §2.1): InvokeActor, GetActorState,
ExecuteActorStateTransaction, the timer and reminder RPCs, and a gRPC app's
SubscribeActorEventsAlpha1 stream (§1.2), each over the :class:`Actors` capability.

Timer and reminder ``data`` go in as daprd stores them: the request's bytes JSON-encoded
(``json.Marshal`` of a Go ``[]byte``: a base64 string), so a gRPC-registered payload comes back
to the app as that string, as with daprd.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from dapr.proto.runtime.v1 import actors_pb2
from google.protobuf import any_pb2, empty_pb2, wrappers_pb2

from pylotto.appchannel.actors import StreamActorHost, initial_request_config
from pylotto.capabilities.actors.api import (
    REENTRANCY_HEADER,
    ActorAnswer,
    ActorCall,
    ActorRef,
    Actors,
    Reminder,
    ReminderSpec,
    StateOperation,
    TimerSpec,
)
from pylotto.core.errors import Internal, InvalidArgument, NotConfigured
from pylotto.core.tasks import stop_task
from pylotto.facades.common.base import RuntimeRpcs
from pylotto.facades.dapr.jobs import policy_from_proto

log = logging.getLogger("pylotto.dapr.actors")

FIRST_MESSAGE = "first message must be SubscribeActorEventsRequestInitialAlpha1"
NO_GRPC_APP = "actor callback streaming requires a gRPC app channel"


def answer_or_raise(answer: ActorAnswer) -> ActorAnswer:
    """``answer`` when the caller gets it as it is (a 200, or an actor error); any other
    status raises ``error from actor service: (<code>) <body>``, which the APIs answer as
    ``ERR_ACTOR_INVOKE_METHOD`` (daprd's transport/http/http.go: not 200 is an error)."""
    if answer.actor_error or answer.status == 200:
        return answer
    body = answer.data.decode(errors="replace")
    raise Internal(f"error from actor service: ({answer.status}) {body}", where="actors.invoke")


def grpc_json_data(data: bytes) -> bytes:
    """A gRPC request's timer/reminder ``data`` as daprd stores it (see the module doc)."""
    return json.dumps(base64.b64encode(data).decode()).encode() if data else b""


def bytes_any(data: bytes) -> any_pb2.Any | None:
    if not data:
        return None
    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.BytesValue(value=data))
    return packed


def reminder_proto(reminder: Reminder) -> actors_pb2.ActorReminder:
    spec = reminder.spec
    return actors_pb2.ActorReminder(
        actor_type=reminder.actor.type, actor_id=reminder.actor.id, due_time=spec.due_time,
        period=spec.period, ttl=spec.ttl, data=bytes_any(spec.data))


class DaprActorsRpcs(RuntimeRpcs):
    def actors(self) -> Actors:
        actors: Actors = self.services.actors
        return actors

    async def InvokeActor(self, request: Any, context: Any) -> Any:
        metadata = dict(request.metadata)
        reentrancy = next((v for k, v in metadata.items()
                           if k.lower() == REENTRANCY_HEADER.lower()), None)
        content_type = next((v for k, v in metadata.items() if k.lower() == "content-type"), "")
        call = ActorCall(
            actor=ActorRef(request.actor_type, request.actor_id), method=request.method,
            data=request.data, content_type=content_type,
            headers=tuple((k, v) for k, v in metadata.items()
                          if k.lower() not in ("content-type", REENTRANCY_HEADER.lower())),
            reentrancy_id=reentrancy)
        answer = answer_or_raise(await self.actors().invoke(call))
        return actors_pb2.InvokeActorResponse(data=answer.data)

    async def GetActorState(self, request: Any, context: Any) -> Any:
        value, metadata = await self.actors().get_state(
            ActorRef(request.actor_type, request.actor_id), request.key)
        return actors_pb2.GetActorStateResponse(data=value or b"", metadata=dict(metadata))

    async def ExecuteActorStateTransaction(self, request: Any, context: Any) -> Any:
        operations = [StateOperation(operation=op.operationType, key=op.key,
                                     value=op.value.value if op.HasField("value") else b"",
                                     metadata=dict(op.metadata))
                      for op in request.operations]
        await self.actors().transact(ActorRef(request.actor_type, request.actor_id), operations)
        return empty_pb2.Empty()

    async def RegisterActorTimer(self, request: Any, context: Any) -> Any:
        await self.actors().register_timer(
            ActorRef(request.actor_type, request.actor_id), request.name,
            TimerSpec(due_time=request.due_time, period=request.period, ttl=request.ttl,
                      callback=request.callback, data=grpc_json_data(request.data)))
        return empty_pb2.Empty()

    async def UnregisterActorTimer(self, request: Any, context: Any) -> Any:
        await self.actors().unregister_timer(ActorRef(request.actor_type, request.actor_id),
                                             request.name)
        return empty_pb2.Empty()

    async def RegisterActorReminder(self, request: Any, context: Any) -> Any:
        policy = (policy_from_proto(request.failure_policy)
                  if request.HasField("failure_policy") else None)
        overwrite = request.overwrite if request.HasField("overwrite") else True
        await self.actors().register_reminder(
            ActorRef(request.actor_type, request.actor_id), request.name,
            ReminderSpec(due_time=request.due_time, period=request.period, ttl=request.ttl,
                         data=grpc_json_data(request.data), failure_policy=policy),
            overwrite)
        return empty_pb2.Empty()

    async def UnregisterActorReminder(self, request: Any, context: Any) -> Any:
        await self.actors().unregister_reminder(
            ActorRef(request.actor_type, request.actor_id), request.name)
        return empty_pb2.Empty()

    async def UnregisterActorRemindersByType(self, request: Any, context: Any) -> Any:
        await self.actors().unregister_reminders(request.actor_type, request.actor_id or None)
        return actors_pb2.UnregisterActorRemindersByTypeResponse()

    async def ListActorReminders(self, request: Any, context: Any) -> Any:
        reminders = await self.actors().list_reminders(request.actor_type,
                                                       request.actor_id or None)
        return actors_pb2.ListActorRemindersResponse(reminders=[
            actors_pb2.NamedActorReminder(name=r.name, reminder=reminder_proto(r))
            for r in reminders])

    async def GetActorReminder(self, request: Any, context: Any) -> Any:
        reminder = await self.actors().get_reminder(
            ActorRef(request.actor_type, request.actor_id), request.name)
        spec = reminder.spec
        return actors_pb2.GetActorReminderResponse(
            actor_type=reminder.actor.type, actor_id=reminder.actor.id,
            due_time=spec.due_time, period=spec.period, ttl=spec.ttl,
            data=bytes_any(spec.data))

    async def SubscribeActorEventsAlpha1(
            self, request_iterator: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        """A gRPC app's actor stream: its ``initial_request`` attaches its types, the
        sidecar's requests go out on the stream, the app's answers come back by id, and the
        types are detached when the stream ends."""
        actors = self.actors()
        if not self.services.context.app.is_grpc:
            raise NotConfigured(NO_GRPC_APP, where="actors.stream")
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("request_type") != "initial_request":
            raise InvalidArgument(FIRST_MESSAGE, where="actors.stream_first")
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        host = StreamActorHost(initial_request_config(first.initial_request), outbox.put,
                               description=f"gRPC app's actor stream ({context.peer()})")
        await actors.attach(host)

        async def read() -> None:
            try:
                async for message in request_iterator:
                    host.answer(message)
            except Exception as exc:  # the app went: the stream ends
                log.debug("%s: read failed: %r", host.description, exc)

        reader = asyncio.create_task(read(), name="actor stream reader")
        try:
            yield actors_pb2.SubscribeActorEventsResponseAlpha1(
                initial_response=actors_pb2.SubscribeActorEventsResponseInitialAlpha1())
            log.info("%s attached: %s", host.description,
                     ", ".join(sorted((await host.hosted()).keys())) or "no types")
            while True:
                getter = asyncio.ensure_future(outbox.get())
                done, _ = await asyncio.wait({getter, reader},
                                             return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                yield getter.result()
        finally:
            host.close()
            await stop_task(reader)
            await actors.detach(host)
            log.info("%s detached", host.description)
