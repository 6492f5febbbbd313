"""The workflow actor (docs/design/workflows.md §1.4, §4.2): one instance's inbox and turns.

Every method runs inside the actor's turn (the actor runtime serialises them), on the sidecar
placement gave the instance to. The loaded :class:`InstanceState` stays cached while the actor
is active; a failed commit drops the cache, so the next call reloads what the store has.

- :meth:`create`: a new instance (``ExecutionStarted`` into the inbox); an active one with the
  same id is ``ALREADY_EXISTS``; a finished one is replaced (unless ``unique``).
- :meth:`add`: one event into the inbox (NotFound: no such instance).
- :meth:`run`: one turn: ``WorkflowStarted`` + the de-duplicated inbox to a worker, its
  actions through the applier, ONE transaction, then the effects (after the commit, outside
  the turn). An instance already finished drops its inbox without a turn.
- :meth:`sent`: outbox entries delivered (deleted). A turn's deliveries that the history
  cannot recompute (``sendEvent``, ``terminateWorkflow``, a recursive terminate's notices)
  are committed with the turn into the outbox; :meth:`recover` sends what is left again.
- :meth:`purge`: every key of a finished instance (or any, with ``force``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf import timestamp_pb2

from pylotto.capabilities.actors.api import ActorRef, StateOperation
from pylotto.capabilities.actors.state import ActorState
from pylotto.capabilities.actors.table import ActorTable
from pylotto.capabilities.workflows.api import Deliver, Effect, WorkItemSink
from pylotto.capabilities.workflows.applier import (
    apply,
    deduplicated,
    is_duplicate_raise,
    new_event,
    outstanding,
)
from pylotto.capabilities.workflows.names import METADATA, history_key, inbox_key, outbox_key
from pylotto.capabilities.workflows.state import (
    InstanceState,
    Projection,
    event,
    parse_metadata,
    project,
)
from pylotto.core.errors import AlreadyExists, Internal, NotFound
from pylotto.proto import durabletask as dt

log = logging.getLogger("pylotto.workflows")

TURN_TIMEOUT_SECONDS = 120.0
NOT_COMPLETED = "orchestration has not yet completed"


def no_such_instance(instance_id: str) -> NotFound:
    return NotFound("no such instance exists", where="workflows.instance",
                    instance_id=instance_id)


class Orchestrator:
    def __init__(self, store: ActorState, table: ActorTable, sink: WorkItemSink, *,
                 effects: Callable[[str, list[Effect]], None],
                 changed: Callable[[str], None],
                 turn_timeout: float = TURN_TIMEOUT_SECONDS) -> None:
        self.store = store
        self.table = table
        self.sink = sink
        self.effects = effects
        self.changed = changed
        self.turn_timeout = turn_timeout
        self.cache: dict[ActorRef, InstanceState] = {}
        self.commits = 0
        """Transactions written (one per create, add, turn and purge)."""

    # ---- state ---------------------------------------------------------------------------

    async def load(self, actor: ActorRef) -> InstanceState | None:
        cached = self.cache.get(actor)
        if cached is not None:
            return cached
        raw, _ = await self.store.get(actor, METADATA)
        if raw is None:
            return None
        meta = parse_metadata(raw)
        state = InstanceState(actor.id, inbox_next=int(meta["inbox_next"]),
                              custom_status=meta.get("custom_status"),
                              updated_ns=int(meta.get("updated_ns", 0)))
        for index in range(int(meta["history_len"])):
            stored, _ = await self.store.get(actor, history_key(index))
            if stored is None:
                raise Internal(f"workflow {actor.id}: history event {index} is missing",
                               where="workflows.state")
            state.history.append(event(stored))
        for seq in meta["inbox"]:
            stored, _ = await self.store.get(actor, inbox_key(int(seq)))
            if stored is not None:
                state.inbox[int(seq)] = event(stored)
        state.outbox_next = int(meta.get("outbox_next", 0))
        for seq, target in (meta.get("outbox") or {}).items():
            stored, _ = await self.store.get(actor, outbox_key(int(seq)))
            if stored is not None:
                state.outbox[int(seq)] = (str(target), event(stored))
        state.stored_history = len(state.history)
        state.view = _view_of(state, meta)
        self.cache[actor] = state
        return state

    async def _commit(self, actor: ActorRef, ops: list[StateOperation]) -> None:
        try:
            await self.table.transact(actor, ops)
        except BaseException:
            self.cache.pop(actor, None)  # the store has what it had: reload it next time
            raise
        self.commits += 1

    # ---- the actor's methods -------------------------------------------------------------

    async def create(self, actor: ActorRef, started: dt.history.HistoryEvent,
                     unique: bool = False) -> bool:
        """A new instance; True when it replaced a finished one."""
        old = await self.load(actor)
        ops: list[StateOperation] = []
        if old is not None:
            if not old.finished:
                raise AlreadyExists(f"an active workflow with ID '{actor.id}' already exists",
                                    where="workflows.create", instance_id=actor.id)
            if unique:
                raise AlreadyExists(
                    f"a workflow with ID '{actor.id}' already exists and the create enforces "
                    "instance ID uniqueness", where="workflows.create", instance_id=actor.id)
            kept = {outbox_key(seq) for seq in old.outbox}  # the old one's deliveries stay due
            ops = [StateOperation("delete", key) for key in old.all_keys()
                   if key != METADATA and key not in kept]
        state = InstanceState(actor.id)
        if old is not None:
            state.outbox, state.outbox_next = old.outbox, old.outbox_next
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        state.view.name = started.executionStarted.name
        state.view.created_ns = now.ToNanoseconds()
        state.updated_ns = state.view.created_ns
        state.view.execution_id = started.executionStarted.workflowInstance.executionId.value
        ops += state.add_to_inbox(started)
        self.cache[actor] = state
        await self._commit(actor, ops)
        self.changed(actor.id)
        return old is not None

    async def add(self, actor: ActorRef, added: dt.history.HistoryEvent) -> None:
        state = await self.load(actor)
        if state is None:
            raise no_such_instance(actor.id)
        if is_duplicate_raise(added, state.history, list(state.inbox.values())):
            log.debug("workflows: %s: a re-sent event %r dropped", actor.id,
                      added.eventRaised.name)
            return
        await self._commit(actor, state.add_to_inbox(added))

    async def run(self, actor: ActorRef) -> None:
        state = await self.load(actor)
        if state is None or not state.inbox:
            return
        consumed = sorted(state.inbox)
        inbox = [state.inbox[seq] for seq in consumed]
        fresh = [] if state.finished else deduplicated(state.history, inbox)
        if not fresh:  # finished ("dropping work item") or only duplicates
            for seq in consumed:
                del state.inbox[seq]
            await self._commit(actor, state.commit_ops(consumed, len(state.history), []))
            return
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        started = new_event(now)
        started.workflowStarted.SetInParent()
        new_events = [started, *fresh]
        view = state.view
        if not view.execution_id:
            for e in fresh:
                if e.WhichOneof("eventType") == "executionStarted":
                    view.execution_id = e.executionStarted.workflowInstance.executionId.value
        request = dt.service.WorkflowRequest(instanceId=actor.id, pastEvents=state.history,
                                             newEvents=new_events)
        request.executionId.value = view.execution_id
        async with asyncio.timeout(self.turn_timeout):
            response = await self.sink.orchestrate(request)
        view = project([*state.history, *new_events], view)
        result = apply(actor.id, view, state.history, new_events, list(response.actions), now)
        for seq in consumed:
            del state.inbox[seq]
        added: list[int] = []
        for carried in result.carried:
            seq = state.inbox_next
            state.inbox_next += 1
            state.inbox[seq] = carried
            added.append(seq)
        state.history = result.history
        if response.HasField("customStatus"):
            state.custom_status = response.customStatus.value
        state.updated_ns = now.ToNanoseconds()
        state.view = (project(result.carried, view) if result.carried
                      else project(result.history, view))
        effects: list[Effect] = []
        outgoing: list[int] = []
        for effect in result.effects:
            if isinstance(effect, Deliver) and effect.durable:
                seq = state.add_to_outbox(effect.instance_id, effect.event)
                outgoing.append(seq)
                effect = dataclasses.replace(effect, outbox=seq)
            effects.append(effect)
        await self._commit(actor, state.commit_ops(consumed, result.appended_from, added,
                                                   outgoing))
        state.stored_history = len(state.history)
        self.changed(actor.id)
        if effects:
            self.effects(actor.id, effects)

    async def sent(self, actor: ActorRef, delivered: list[int]) -> None:
        """The outbox entries ``delivered`` reached their targets: forget them."""
        state = await self.load(actor)
        if state is None:
            return  # purged meanwhile
        done = [seq for seq in delivered if seq in state.outbox]
        if done:
            await self._commit(actor, state.sent_ops(done))

    async def purge(self, actor: ActorRef, force: bool) -> int:
        state = await self.load(actor)
        if state is None:
            raise no_such_instance(actor.id)
        if not state.finished and not force:
            raise Internal(NOT_COMPLETED, where="workflows.purge", instance_id=actor.id)
        await self._commit(actor, [StateOperation("delete", key) for key in state.all_keys()])
        self.cache.pop(actor, None)
        self.changed(actor.id)
        return 1

    async def recover(self, actor: ActorRef) -> bool:
        """On the actor's first activation here (a restart, or the instance moved from a
        sidecar that died): run again what the committed history still waits for; True when
        the inbox has events for a turn. An instance already loaded here: nothing to do."""
        fresh = actor not in self.cache
        state = await self.load(actor)
        if state is None or not fresh:
            return False
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        effects = outstanding(actor.id, state.view, state.history, now)
        effects += [Deliver(target, sent, durable=True, outbox=seq)
                    for seq, (target, sent) in sorted(state.outbox.items())]
        if effects:
            self.effects(actor.id, effects)
        return bool(state.inbox)

    def forget(self, actor: ActorRef) -> None:
        self.cache.pop(actor, None)


def _view_of(state: InstanceState, meta: dict[str, Any]) -> Projection:
    if state.history:
        view = project(state.history)
    else:  # not started yet, or continued as new: the start is in the inbox
        view = project(list(state.inbox.values()))
        view.status = int(meta["status"])
    view.created_ns = int(meta.get("created_ns") or view.created_ns)
    view.name = view.name or str(meta.get("name", ""))
    return view
