"""Dapr workflows on the actor runtime (docs/design/workflows.md, docs/workflows.md):
:class:`WorkflowsCapability`, what the Durable Task facade calls.

Instances are the internal actors ``dapr.internal.default.<appid>.workflow`` (and
``….activity`` for activities), hosted by the in-process :class:`WorkflowHost` attached to
the actor runtime at start; their state is in the actor state store (``state.py``), timers are
actor reminders on the scheduler, turns and activities go to the connected SDK workers
(``dispatch.py``). Without an actor state store, :class:`DisabledWorkflows` answers every call
with daprd's "no actor runtime" error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from google.protobuf import timestamp_pb2

from pylotto.capabilities.actors import ActorsCapability
from pylotto.capabilities.actors.api import ActorCall, ActorRef, ReminderSpec
from pylotto.capabilities.actors.state import RUNTIME_NOT_FOUND, ActorState
from pylotto.capabilities.workflows.api import (
    CancelTimers,
    Deliver,
    Effect,
    RunActivity,
    RunAgain,
    StartChild,
    StartTimer,
)
from pylotto.capabilities.workflows.applier import new_event, unique_timestamp
from pylotto.capabilities.workflows.dispatch import Dispatcher
from pylotto.capabilities.workflows.host import WorkflowHost
from pylotto.capabilities.workflows.index import InstanceIndex
from pylotto.capabilities.workflows.names import (
    METADATA,
    activity_id,
    activity_type,
    history_key,
    timer_reminder,
    validate_instance_id,
    workflow_type,
)
from pylotto.capabilities.workflows.orchestrator import Orchestrator
from pylotto.capabilities.workflows.state import event, parse_metadata
from pylotto.core.errors import (
    AlreadyExists,
    Internal,
    InvalidArgument,
    NotConfigured,
    NotFound,
    PylottoError,
)
from pylotto.core.tasks import stop_task
from pylotto.proto import durabletask as dt

log = logging.getLogger("pylotto.workflows")

RETRIES = 8
SWEEP_SECONDS = 5.0
"""How often a sidecar looks for unfinished instances it owns but has not activated."""
POLL_SECONDS = 1.0
"""The wait loops' fallback re-read (a change on this sidecar wakes them at once)."""


class Workflows:
    """What the facades call (the capability, or the disabled one)."""

    dispatcher: Dispatcher

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def check(self) -> None:
        """Raise the "not configured" error when workflows cannot run here."""


class DisabledWorkflows(Workflows):
    """No actor state store: every call answers daprd's ``ErrActorRuntimeNotFound`` (gRPC
    Internal, as daprd's ``requireActorStateStore``); a worker may still connect (its stream
    idles), as with daprd."""

    def __init__(self) -> None:
        self.dispatcher = Dispatcher()

    def check(self) -> None:
        raise Internal(RUNTIME_NOT_FOUND, where="workflows.runtime")


class WorkflowsCapability(Workflows):
    def __init__(self, actors: ActorsCapability, app_id: str) -> None:
        if actors.store is None:
            raise NotConfigured(RUNTIME_NOT_FOUND, where="actors.runtime")
        self.actors = actors
        self.store: ActorState = actors.store
        self.app_id = app_id
        self.workflow_type = workflow_type(app_id)
        self.activity_type = activity_type(app_id)
        self.dispatcher = Dispatcher()
        self.orchestrator = Orchestrator(self.store, actors.table, self.dispatcher,
                                         effects=self._spawn_effects, changed=self._changed)
        self.host = WorkflowHost(self.workflow_type, self.activity_type, self.orchestrator,
                                 self.dispatcher, kick=self.kick, deliver=self.deliver)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: dict[str, asyncio.Event] = {}
        self.index = InstanceIndex(self.store, app_id)
        self._finished: set[str] = set()
        """Instances seen finished (and without a parent): never resumed again."""
        self.sweep_seconds = SWEEP_SECONDS

    def check(self) -> None:
        return None

    async def start(self) -> None:
        await self.actors.attach(self.host)
        try:
            await self.index.migrate()
        except PylottoError as err:
            log.warning("workflows: the former instance index cannot be migrated: %s",
                        err.message)
        self._background(self._recover_loop(), "workflows: recover")

    async def _recover_loop(self) -> None:
        """Resume the unfinished instances at start, then every :data:`SWEEP_SECONDS` those
        this sidecar owns but has not activated (another sidecar, which had them, died)."""
        await self._recover(sweep=False)
        while True:
            await asyncio.sleep(self.sweep_seconds)
            await self._recover(sweep=True)

    async def _recover(self, *, sweep: bool) -> None:
        """The effects an instance's committed history still waits for are run again, and a
        non-empty inbox gets its turn (the workflow actor does it on its first activation
        only: ``Orchestrator.recover``)."""
        try:
            ids = await self.index.all()
        except PylottoError as err:
            log.warning("workflows: the instance index cannot be read: %s", err.message)
            return
        resumed = 0
        for instance_id in ids:
            ref = self._ref(instance_id)
            if instance_id in self._finished or (sweep and (
                    not self.actors.placement.owns(ref) or self.actors.table.is_active(ref))):
                continue
            meta = await self._get_quietly(instance_id)
            if meta is None:
                continue
            finished = int(meta["status"]) in dt.TERMINAL
            if finished and not meta["parent_id"] and not meta.get("outbox"):
                self._finished.add(instance_id)
                continue
            try:
                await self._call(instance_id, "recover")
                resumed += 1
            except PylottoError as err:
                log.warning("workflows: %s cannot be resumed: %s", instance_id, err.message)
                continue
            if finished:
                self._finished.add(instance_id)  # its notice to the parent went again
        if resumed:
            log.info("workflows: %d instance(s) resumed", resumed)

    async def _get_quietly(self, instance_id: str) -> dict[str, Any] | None:
        try:
            return await self.get(instance_id)
        except PylottoError:
            return None

    async def stop(self) -> None:
        for task in [*self._running.values(), *self._tasks]:
            await stop_task(task)
        self._running.clear()
        self._tasks.clear()

    # ---- calls on the internal actors ------------------------------------------------------

    def _ref(self, instance_id: str) -> ActorRef:
        return ActorRef(self.workflow_type, instance_id)

    async def _call(self, instance_id: str, method: str, data: bytes = b"") -> bytes:
        answer = await self.actors.router.call(ActorCall(self._ref(instance_id), method, data))
        return answer.data

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def kick(self, instance_id: str) -> None:
        """Run the instance's turns until its inbox is empty (coalesced: one driver each)."""
        if instance_id in self._running:
            self._again.add(instance_id)
            return
        self._running[instance_id] = asyncio.create_task(self._drive(instance_id),
                                                         name=f"workflow {instance_id}")

    async def _drive(self, instance_id: str) -> None:
        failures = 0
        try:
            while True:
                self._again.discard(instance_id)
                try:
                    await self._call(instance_id, "run")
                    failures = 0
                except (PylottoError, TimeoutError) as err:
                    failures += 1
                    text = err.message if isinstance(err, PylottoError) else "turn timed out"
                    if failures > RETRIES:
                        log.warning("workflows: %s: turn failed %d times (%s): left until its "
                                    "next event", instance_id, failures, text)
                        return
                    log.info("workflows: %s: turn failed (%s): retried", instance_id, text)
                    await asyncio.sleep(min(0.1 * 2 ** failures, 5.0))
                    self._again.add(instance_id)
                if instance_id not in self._again:
                    return
        finally:
            self._running.pop(instance_id, None)

    async def deliver(self, instance_id: str, added: dt.history.HistoryEvent) -> None:
        await self._call(instance_id, "add", added.SerializeToString())

    # ---- effects (after a turn's commit) ---------------------------------------------------

    def _spawn_effects(self, instance_id: str, effects: list[Effect]) -> None:
        self._background(self._effects(instance_id, effects), f"workflow {instance_id} effects")

    async def _effects(self, instance_id: str, effects: list[Effect]) -> None:
        delivered: list[int] = []
        for effect in effects:
            if isinstance(effect, Deliver) and effect.outbox >= 0:
                if await self._deliver_durably(instance_id, effect):
                    delivered.append(effect.outbox)
                continue
            try:
                await self._effect(instance_id, effect)
            except PylottoError as err:
                log.warning("workflows: %s: %s failed: %s", instance_id,
                            type(effect).__name__, err.message)
        if delivered:
            try:
                await self._call(instance_id, "sent", json.dumps(delivered).encode())
            except PylottoError as err:  # they stay in the outbox: sent again on recovery
                log.info("workflows: %s: outbox not cleared: %s", instance_id, err.message)

    async def _deliver_durably(self, instance_id: str, effect: Deliver) -> bool:
        """Deliver an outbox entry, retried; True once it reached its target (or the target
        does not exist). False leaves it in the outbox, sent again when the instance is next
        loaded (at least once: the receiver drops a re-sent ``EventRaised``)."""
        for attempt in range(RETRIES + 1):
            try:
                await self.deliver(effect.instance_id, effect.event)
                return True
            except NotFound:
                log.info("workflows: %s: event for unknown instance %s dropped", instance_id,
                         effect.instance_id)
                return True
            except PylottoError as err:
                if attempt == RETRIES:
                    log.warning("workflows: %s: delivery to %s failed, kept in the outbox: "
                                "%s", instance_id, effect.instance_id, err.message)
                    return False
                await asyncio.sleep(min(0.1 * 2 ** attempt, 5.0))
        return False

    async def _effect(self, instance_id: str, effect: Effect) -> None:
        if isinstance(effect, RunActivity):
            self._background(self._activity(instance_id, effect),
                             f"activity {instance_id}::{effect.task_id}")
        elif isinstance(effect, StartTimer):
            if self.actors.reminders is None:  # an in-memory timer: do not hold the others
                self._background(self._timer(instance_id, effect), f"timer {instance_id}")
            else:
                await self._timer(instance_id, effect)
        elif isinstance(effect, StartChild):
            await self._child(instance_id, effect)
        elif isinstance(effect, Deliver):
            try:
                await self.deliver(effect.instance_id, effect.event)
            except NotFound:
                log.info("workflows: %s: event for unknown instance %s dropped", instance_id,
                         effect.instance_id)
        elif isinstance(effect, CancelTimers):
            if self.actors.reminders is not None:
                await self.actors.reminders.unregister_all(self.workflow_type, instance_id)
        elif isinstance(effect, RunAgain):
            self.kick(instance_id)

    async def _activity(self, instance_id: str, effect: RunActivity) -> None:
        actor = ActorRef(self.activity_type, activity_id(instance_id, effect.task_id))
        call = ActorCall(actor, "run", effect.request.SerializeToString())
        for attempt in range(RETRIES + 1):
            try:
                await self.actors.router.call(call)
                break
            except NotFound:
                return  # the instance is gone (purged): give up, as daprd
            except PylottoError as err:
                if attempt == RETRIES:
                    log.warning("workflows: activity %s failed: %s", actor.id, err.message)
                    return
                await asyncio.sleep(min(0.1 * 2 ** attempt, 5.0))
        await self.actors.table.deactivate([actor])

    async def _timer(self, instance_id: str, effect: StartTimer) -> None:
        reminders = self.actors.reminders
        if effect.fire_at_ns > time.time_ns() and reminders is not None:
            fire_at = timestamp_pb2.Timestamp()
            fire_at.FromNanoseconds(effect.fire_at_ns)
            data = json.dumps({"timerId": effect.timer_id,
                               "fireAt": effect.fire_at_ns}).encode()
            try:
                await reminders.register(self._ref(instance_id), timer_reminder(effect.timer_id),
                                         ReminderSpec(due_time=fire_at.ToJsonString(),
                                                      data=data), True)
                return
            except InvalidArgument as err:  # the scheduler's job-name rule refused the id
                log.warning("workflows: %s: timer %d kept in memory only (not durable): %s",
                            instance_id, effect.timer_id, err.message)
                self._background(self._memory_timer(instance_id, effect),
                                 f"timer {instance_id}")
                return
        await self._memory_timer(instance_id, effect)

    async def _memory_timer(self, instance_id: str, effect: StartTimer) -> None:
        """Deliver ``TimerFired`` at its time from this process (a past time; no reminders,
        as in the unit tests' runtime; an id the scheduler's job names refuse: lost on a
        restart, where the recovery at start sets it again)."""
        await asyncio.sleep(max(0.0, (effect.fire_at_ns - time.time_ns()) / 1e9))
        fired = new_event(_now())
        fired.timerFired.timerId = effect.timer_id
        fired.timerFired.fireAt.FromNanoseconds(effect.fire_at_ns)
        await self.deliver(instance_id, fired)

    async def _child(self, instance_id: str, effect: StartChild) -> None:
        try:
            validate_instance_id(effect.instance_id)
            await self._create(effect.instance_id, effect.started, unique=False)
        except AlreadyExists as err:
            existing = await self._get_quietly(effect.instance_id)
            if existing is not None and existing.get("parent_id") == instance_id:
                return  # created before a restart: it is ours
            await self._child_failed(instance_id, effect, err)
        except PylottoError as err:
            await self._child_failed(instance_id, effect, err)

    async def _child_failed(self, instance_id: str, effect: StartChild,
                            err: PylottoError) -> None:
        failed = new_event(_now())
        details = failed.childWorkflowInstanceFailed
        details.taskScheduledId = effect.started.executionStarted.parentInstance.taskScheduledId
        details.failureDetails.errorType = type(err).__name__
        details.failureDetails.errorMessage = err.message
        await self.deliver(instance_id, failed)

    # ---- waiting -----------------------------------------------------------------------------

    def _changed(self, instance_id: str) -> None:
        waiter = self._waiters.pop(instance_id, None)
        if waiter is not None:
            waiter.set()

    async def wait(self, instance_id: str, done: Callable[[dict[str, Any] | None], bool]
                   ) -> dict[str, Any] | None:
        """The instance's metadata once ``done(metadata)`` (bound it with
        ``asyncio.timeout``)."""
        while True:
            waiter = self._waiters.setdefault(instance_id, asyncio.Event())
            meta = await self.get(instance_id)
            if done(meta):
                return meta
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await waiter.wait()

    # ---- the API -----------------------------------------------------------------------------

    async def _create(self, instance_id: str, started: dt.history.HistoryEvent,
                      unique: bool) -> None:
        method = "create-unique" if unique else "create"
        await self._call(instance_id, method, started.SerializeToString())
        await self.index.add(instance_id)

    async def start_instance(self, instance_id: str, name: str, input_: str | None, *,
                             execution_id: str = "", unique: bool = False) -> str:
        self.check()
        instance_id = instance_id or uuid.uuid4().hex
        validate_instance_id(instance_id)
        started = new_event(_now())
        started.executionStarted.name = name
        if input_ is not None:
            started.executionStarted.input.value = input_
        started.executionStarted.workflowInstance.instanceId = instance_id
        started.executionStarted.workflowInstance.executionId.value = (execution_id
                                                                        or uuid.uuid4().hex)
        await self._create(instance_id, started, unique)
        return instance_id

    async def get(self, instance_id: str) -> dict[str, Any] | None:
        raw, _ = await self.store.get(self._ref(instance_id), METADATA)
        return None if raw is None else parse_metadata(raw)

    async def history(self, instance_id: str) -> list[dt.history.HistoryEvent] | None:
        meta = await self.get(instance_id)
        if meta is None:
            return None
        events = []
        for index in range(int(meta["history_len"])):
            raw, _ = await self.store.get(self._ref(instance_id), history_key(index))
            if raw is not None:
                events.append(event(raw))
        return events

    async def raise_event(self, instance_id: str, name: str, input_: str | None) -> None:
        raised = new_event(unique_timestamp())  # distinct from every other raised here
        raised.eventRaised.name = name
        if input_ is not None:
            raised.eventRaised.input.value = input_
        await self.deliver(instance_id, raised)

    async def terminate(self, instance_id: str, output: str | None, recursive: bool) -> None:
        notice = new_event(_now())
        if output is not None:
            notice.executionTerminated.input.value = output
        notice.executionTerminated.recurse = recursive
        notice.executionTerminated.SetInParent()
        await self.deliver(instance_id, notice)

    async def suspend(self, instance_id: str, reason: str | None) -> None:
        notice = new_event(_now())
        notice.executionSuspended.SetInParent()
        if reason is not None:
            notice.executionSuspended.input.value = reason
        await self.deliver(instance_id, notice)

    async def resume(self, instance_id: str, reason: str | None) -> None:
        notice = new_event(_now())
        notice.executionResumed.SetInParent()
        if reason is not None:
            notice.executionResumed.input.value = reason
        await self.deliver(instance_id, notice)

    async def purge(self, instance_id: str, *, force: bool = False,
                    recursive: bool = False) -> int:
        count = 0
        if recursive:
            for child in await self._children(instance_id):
                with contextlib.suppress(NotFound):
                    count += await self.purge(child, force=force, recursive=True)
        data = await self._call(instance_id, "purge-force" if force else "purge")
        count += int(data or b"0")
        if self.actors.reminders is not None:
            await self.actors.reminders.unregister_all(self.workflow_type, instance_id)
        await self.index.remove(instance_id)
        return count

    async def _children(self, instance_id: str) -> list[str]:
        events = await self.history(instance_id) or []
        return [e.childWorkflowInstanceCreated.instanceId for e in events
                if e.WhichOneof("eventType") == "childWorkflowInstanceCreated"]

    async def list_ids(self, token: str, page_size: int) -> tuple[list[str], str]:
        return await self.index.page(token, page_size)


def _now() -> timestamp_pb2.Timestamp:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    return now


__all__ = ["DisabledWorkflows", "Workflows", "WorkflowsCapability"]
