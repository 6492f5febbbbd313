"""The in-process :class:`ActorHost` of the two internal types (docs/design/workflows.md §4.1):
calls and reminder ticks on ``….workflow`` go to the :class:`Orchestrator`, calls on
``….activity`` run the activity and hand its outcome on. Only the workflow capability calls
these actors (through the router, so placement and the turn lock apply); the actor APIs of the
facades refuse the ``dapr.internal.`` prefix.

Workflow methods: ``create`` / ``create-unique`` (data: the ``ExecutionStarted`` event),
``add`` (data: one event), ``run``, ``recover`` (after a restart), ``sent`` (data: the JSON
list of the outbox entries delivered), ``purge`` / ``purge-force``. Reminders ``timer-<id>``
(data: JSON ``{"timerId", "fireAt"}``) add a ``TimerFired``. Activity method: ``run`` (data:
the ``ActivityRequest``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping

from google.protobuf import timestamp_pb2

from pylotto.capabilities.actors.api import (
    ActorAnswer,
    ActorCall,
    ActorHost,
    ActorRef,
    EntityConfig,
    Tick,
    TickOutcome,
)
from pylotto.capabilities.workflows.activity import run_activity
from pylotto.capabilities.workflows.api import WorkItemSink
from pylotto.capabilities.workflows.applier import new_event
from pylotto.capabilities.workflows.orchestrator import Orchestrator
from pylotto.capabilities.workflows.state import event
from pylotto.core.errors import InvalidArgument, NotFound
from pylotto.proto import durabletask as dt

log = logging.getLogger("pylotto.workflows")

Deliver = Callable[[str, dt.history.HistoryEvent], Awaitable[None]]


class WorkflowHost(ActorHost):
    description = "workflow engine"

    def __init__(self, workflow_type: str, activity_type: str, orchestrator: Orchestrator,
                 sink: WorkItemSink, *, kick: Callable[[str], None], deliver: Deliver) -> None:
        self.workflow_type = workflow_type
        self.activity_type = activity_type
        self.orchestrator = orchestrator
        self.sink = sink
        self.kick = kick
        self.deliver = deliver

    async def hosted(self) -> Mapping[str, EntityConfig]:
        return {self.workflow_type: EntityConfig(), self.activity_type: EntityConfig()}

    async def invoke(self, call: ActorCall, reentrancy_id: str | None) -> ActorAnswer:
        actor, method = call.actor, call.method
        if actor.type == self.activity_type and method == "run":
            request = dt.service.ActivityRequest()
            request.ParseFromString(call.data)
            outcome = await run_activity(self.sink, request)
            await self.deliver(request.workflowInstance.instanceId, outcome)
            return ActorAnswer()
        if actor.type != self.workflow_type:
            raise NotFound(f"actor method not found: {method}", where="workflows.host")
        orchestrator = self.orchestrator
        if method in ("create", "create-unique"):
            await orchestrator.create(actor, event(call.data), unique=method == "create-unique")
            self.kick(actor.id)
            return ActorAnswer()
        if method == "add":
            await orchestrator.add(actor, event(call.data))
            self.kick(actor.id)
            return ActorAnswer()
        if method == "run":
            await orchestrator.run(actor)
            return ActorAnswer()
        if method == "recover":
            if await orchestrator.recover(actor):
                self.kick(actor.id)
            return ActorAnswer()
        if method == "sent":
            await orchestrator.sent(actor, [int(seq) for seq in json.loads(call.data)])
            return ActorAnswer()
        if method in ("purge", "purge-force"):
            count = await orchestrator.purge(actor, force=method == "purge-force")
            return ActorAnswer(data=str(count).encode())
        raise InvalidArgument(f"unknown workflow actor method {method}", where="workflows.host")

    async def tick(self, tick: Tick) -> TickOutcome:
        if tick.actor.type != self.workflow_type or not tick.name.startswith("timer-"):
            return TickOutcome(delivered=True, cancel=True)
        try:
            data = json.loads(tick.data)
            fired = new_event(_now())
            fired.timerFired.timerId = int(data["timerId"])
            fired.timerFired.fireAt.FromNanoseconds(int(data["fireAt"]))
        except (ValueError, KeyError, TypeError):
            log.warning("workflows: reminder %s of %s has bad data: dropped", tick.name,
                        tick.actor.id)
            return TickOutcome(delivered=True, cancel=True)
        try:
            await self.orchestrator.add(tick.actor, fired)
        except NotFound:
            return TickOutcome(delivered=True, cancel=True)  # purged meanwhile
        self.kick(tick.actor.id)
        return TickOutcome(delivered=True)

    async def deactivate(self, actor: ActorRef) -> bool:
        self.orchestrator.forget(actor)
        return True


def _now() -> timestamp_pb2.Timestamp:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return now
