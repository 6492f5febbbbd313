"""A turn's actions → history events and outgoing effects (docs/design/workflows.md §1.4, after
durabletask-go's ``backend/runtimestate/applier.go``).

:func:`deduplicated` drops inbox events the history already has (a second completion of one
task, child or timer; a second start). :func:`apply` appends the turn's events, then one
history event per action (``eventId`` = the action's id) and the effects to run after the
commit. Continue-as-new replaces the history: the next turn starts from a fresh
``ExecutionStarted`` (same name and parent, the result as input, a new execution id) and the
carried-over events. A terminate in the turn wins over continue-as-new and over an unfinished
orchestrator (force-completed TERMINATED); with ``recurse`` every unfinished child gets it too.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from google.protobuf import timestamp_pb2

from pylotto.capabilities.workflows.api import (
    CancelTimers,
    Deliver,
    Effect,
    RunActivity,
    RunAgain,
    StartChild,
    StartTimer,
)
from pylotto.capabilities.workflows.state import Projection
from pylotto.proto import durabletask as dt

HistoryEvent = dt.history.HistoryEvent


def new_event(now: timestamp_pb2.Timestamp, event_id: int = -1) -> HistoryEvent:
    event = HistoryEvent(eventId=event_id)
    event.timestamp.CopyFrom(now)
    return event


_last_unique_ns = 0


def unique_timestamp() -> timestamp_pb2.Timestamp:
    """Now, strictly later than every earlier answer in this process (daprd's
    ``uniqueEventTimestamp``): two distinct events raised at once never share a timestamp,
    so a receiver can tell a re-sent ``EventRaised`` (same name, same timestamp) from a new
    one (:func:`is_duplicate_raise`)."""
    global _last_unique_ns
    _last_unique_ns = max(time.time_ns(), _last_unique_ns + 1)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(_last_unique_ns)
    return stamp


def is_duplicate_raise(event: HistoryEvent, history: list[HistoryEvent],
                       inbox: list[HistoryEvent]) -> bool:
    """``event`` is an ``EventRaised`` the history or the inbox already has (same name and
    timestamp: a re-delivery, as daprd's ``IsDuplicateExternalEvent``)."""
    if event.WhichOneof("eventType") != "eventRaised":
        return False
    name = event.eventRaised.name
    return any(e.WhichOneof("eventType") == "eventRaised" and e.eventRaised.name == name
               and e.timestamp == event.timestamp for e in (*history, *inbox))


def _completion_key(event: HistoryEvent) -> tuple[str, int] | None:
    kind = event.WhichOneof("eventType")
    if kind == "taskCompleted":
        return ("task", event.taskCompleted.taskScheduledId)
    if kind == "taskFailed":
        return ("task", event.taskFailed.taskScheduledId)
    if kind == "childWorkflowInstanceCompleted":
        return ("child", event.childWorkflowInstanceCompleted.taskScheduledId)
    if kind == "childWorkflowInstanceFailed":
        return ("child", event.childWorkflowInstanceFailed.taskScheduledId)
    if kind == "timerFired":
        return ("timer", event.timerFired.timerId)
    if kind == "executionStarted":
        return ("start", 0)
    return None


def deduplicated(history: list[HistoryEvent], inbox: list[HistoryEvent]) -> list[HistoryEvent]:
    """``inbox`` without the events ``history`` (or an earlier inbox event) already has."""
    seen = {key for key in map(_completion_key, history) if key is not None}
    kept: list[HistoryEvent] = []
    for event in inbox:
        key = _completion_key(event)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        kept.append(event)
    return kept


@dataclass(slots=True)
class TurnResult:
    history: list[HistoryEvent]
    """The instance's history after the turn."""
    appended_from: int
    """The first index of ``history`` the turn wrote (0 when continue-as-new replaced it)."""
    carried: list[HistoryEvent] = field(default_factory=list)
    """Continue-as-new: the inbox of the next turn."""
    effects: list[Effect] = field(default_factory=list)


def _parent_notice(view: Projection, now: timestamp_pb2.Timestamp, status: int,
                   result: dt.history.ExecutionCompletedEvent) -> Deliver | None:
    if not view.parent_id:
        return None
    event = new_event(now)
    if status == dt.COMPLETED:
        done = event.childWorkflowInstanceCompleted
        done.taskScheduledId = view.parent_task_id
        if result.HasField("result"):
            done.result.CopyFrom(result.result)
    else:
        failed = event.childWorkflowInstanceFailed
        failed.taskScheduledId = view.parent_task_id
        if result.HasField("failureDetails"):
            failed.failureDetails.CopyFrom(result.failureDetails)
        else:
            failed.failureDetails.errorType = dt.STATUS_NAMES.get(status, str(status))
            failed.failureDetails.errorMessage = (
                f"child workflow ended {dt.STATUS_NAMES.get(status, str(status))}")
    return Deliver(view.parent_id, event)


def _unfinished_children(history: list[HistoryEvent]) -> list[str]:
    created: dict[int, str] = {}
    for event in history:
        kind = event.WhichOneof("eventType")
        if kind == "childWorkflowInstanceCreated":
            created[event.eventId] = event.childWorkflowInstanceCreated.instanceId
        elif kind == "childWorkflowInstanceCompleted":
            created.pop(event.childWorkflowInstanceCompleted.taskScheduledId, None)
        elif kind == "childWorkflowInstanceFailed":
            created.pop(event.childWorkflowInstanceFailed.taskScheduledId, None)
    return list(created.values())


def activity_request(execution: dt.orchestration.WorkflowInstance,
                     scheduled: HistoryEvent) -> dt.service.ActivityRequest:
    """The request of the activity a ``TaskScheduled`` event scheduled."""
    task = scheduled.taskScheduled
    request = dt.service.ActivityRequest(name=task.name, taskId=scheduled.eventId,
                                         taskExecutionId=task.taskExecutionId)
    if task.HasField("version"):
        request.version.CopyFrom(task.version)
    if task.HasField("input"):
        request.input.CopyFrom(task.input)
    request.workflowInstance.CopyFrom(execution)
    return request


def child_start(view: Projection, execution: dt.orchestration.WorkflowInstance,
                created: HistoryEvent, now: timestamp_pb2.Timestamp) -> HistoryEvent:
    """The ``ExecutionStarted`` of the child a ``ChildWorkflowInstanceCreated`` event made."""
    child = created.childWorkflowInstanceCreated
    start = new_event(now)
    started = start.executionStarted
    started.name = child.name
    if child.HasField("input"):
        started.input.CopyFrom(child.input)
    started.workflowInstance.instanceId = child.instanceId
    started.workflowInstance.executionId.value = uuid.uuid4().hex
    started.parentInstance.taskScheduledId = created.eventId
    started.parentInstance.name.value = view.name
    started.parentInstance.workflowInstance.CopyFrom(execution)
    return start


def outstanding(instance_id: str, view: Projection, history: list[HistoryEvent],
                now: timestamp_pb2.Timestamp) -> list[Effect]:
    """The effects a committed ``history`` still waits for (after a restart, when the
    effects of the last turns may have been lost): activities without a result, timers not
    fired, children without an outcome; a finished child's notice to its parent. Running
    them again is safe: results are de-duplicated, timers and children are idempotent."""
    execution = dt.orchestration.WorkflowInstance(instanceId=instance_id)
    execution.executionId.value = view.execution_id
    if view.status in dt.TERMINAL:
        last = next((e for e in reversed(history)
                     if e.WhichOneof("eventType") == "executionCompleted"), None)
        if last is None:
            return []
        notice = _parent_notice(view, now, last.executionCompleted.workflowStatus,
                                last.executionCompleted)
        return [notice] if notice is not None else []
    open_events: dict[tuple[str, int], HistoryEvent] = {}
    for event in history:
        kind = event.WhichOneof("eventType")
        if kind == "taskScheduled":
            open_events[("task", event.eventId)] = event
        elif kind == "timerCreated":
            open_events[("timer", event.eventId)] = event
        elif kind == "childWorkflowInstanceCreated":
            open_events[("child", event.eventId)] = event
        else:
            key = _completion_key(event)
            if key is not None:
                open_events.pop(key, None)
    effects: list[Effect] = []
    for (what, event_id), event in open_events.items():
        if what == "task":
            effects.append(RunActivity(event_id, activity_request(execution, event)))
        elif what == "timer":
            effects.append(StartTimer(event_id, event.timerCreated.fireAt.ToNanoseconds()))
        else:
            effects.append(StartChild(event.childWorkflowInstanceCreated.instanceId,
                                      child_start(view, execution, event, now)))
    return effects


def apply(instance_id: str, view: Projection, past: list[HistoryEvent],
          new_events: list[HistoryEvent], actions: list[dt.actions.WorkflowAction],
          now: timestamp_pb2.Timestamp) -> TurnResult:
    """The history and effects after the worker answered ``actions`` to a turn of
    ``new_events`` over ``past`` (``view``: the instance as ``past`` projects it)."""
    history = [*past, *new_events]
    effects: list[Effect] = []
    terminate = next((e.executionTerminated for e in new_events
                      if e.WhichOneof("eventType") == "executionTerminated"), None)
    if view.status in dt.TERMINAL:
        return TurnResult(history, len(past))
    execution = dt.orchestration.WorkflowInstance(instanceId=instance_id)
    execution.executionId.value = view.execution_id
    completed: dt.history.ExecutionCompletedEvent | None = None
    for action in actions:
        kind = action.WhichOneof("workflowActionType")
        event = new_event(now, action.id)
        if kind == "scheduleTask":
            task = action.scheduleTask
            scheduled = event.taskScheduled
            scheduled.name = task.name
            if task.HasField("version"):
                scheduled.version.CopyFrom(task.version)
            if task.HasField("input"):
                scheduled.input.CopyFrom(task.input)
            scheduled.taskExecutionId = task.taskExecutionId
            history.append(event)
            effects.append(RunActivity(action.id, activity_request(execution, event)))
        elif kind == "createTimer":
            timer = action.createTimer
            created = event.timerCreated
            created.fireAt.CopyFrom(timer.fireAt)
            if timer.HasField("name"):
                created.name = timer.name
            origin = timer.WhichOneof("origin")
            if origin is not None:
                getattr(created, origin).CopyFrom(getattr(timer, origin))
            history.append(event)
            effects.append(StartTimer(action.id, timer.fireAt.ToNanoseconds()))
        elif kind == "createChildWorkflow":
            child = action.createChildWorkflow
            made = event.childWorkflowInstanceCreated
            made.instanceId = child.instanceId
            made.name = child.name
            if child.HasField("version"):
                made.version.CopyFrom(child.version)
            if child.HasField("input"):
                made.input.CopyFrom(child.input)
            history.append(event)
            effects.append(StartChild(child.instanceId, child_start(view, execution, event, now)))
        elif kind == "sendEvent":
            send = action.sendEvent
            sent = event.eventSent
            sent.instanceId = send.instance.instanceId
            sent.name = send.name
            if send.HasField("data"):
                sent.input.CopyFrom(send.data)
            history.append(event)
            raised = new_event(unique_timestamp())  # its identity when sent again
            raised.eventRaised.name = send.name
            if send.HasField("data"):
                raised.eventRaised.input.CopyFrom(send.data)
            effects.append(Deliver(send.instance.instanceId, raised, durable=True))
        elif kind == "terminateWorkflow":
            term = action.terminateWorkflow
            notice = new_event(now)
            if term.HasField("reason"):
                notice.executionTerminated.input.CopyFrom(term.reason)
            notice.executionTerminated.recurse = term.recurse
            effects.append(Deliver(term.instanceId, notice, durable=True))
        elif kind == "completeWorkflow":
            done = action.completeWorkflow
            if done.workflowStatus == dt.CONTINUED_AS_NEW and terminate is None:
                restart = new_event(now)
                started = restart.executionStarted
                started.name = view.name
                if done.HasField("result"):
                    started.input.CopyFrom(done.result)
                started.workflowInstance.instanceId = instance_id
                started.workflowInstance.executionId.value = uuid.uuid4().hex
                if view.parent_id:
                    started.parentInstance.taskScheduledId = view.parent_task_id
                    started.parentInstance.name.value = view.parent_name
                    started.parentInstance.workflowInstance.instanceId = view.parent_id
                return TurnResult([], 0, [restart, *done.carryoverEvents],
                                  [CancelTimers(), RunAgain()])
            if done.workflowStatus == dt.CONTINUED_AS_NEW:
                break  # a terminate in the same turn wins
            completed = event.executionCompleted
            completed.workflowStatus = done.workflowStatus
            if done.HasField("result"):
                completed.result.CopyFrom(done.result)
            if done.HasField("failureDetails"):
                completed.failureDetails.CopyFrom(done.failureDetails)
            history.append(event)
            break
    if completed is None and terminate is not None:
        event = new_event(now)
        completed = event.executionCompleted
        completed.workflowStatus = dt.TERMINATED
        if terminate.HasField("input"):
            completed.result.CopyFrom(terminate.input)
        history.append(event)
    if completed is not None:
        if completed.workflowStatus == dt.TERMINATED:
            effects = [e for e in effects if isinstance(e, Deliver)]  # pending work dropped
            if terminate is not None and terminate.recurse:
                for child_id in _unfinished_children(history):
                    notice = new_event(now)
                    notice.executionTerminated.CopyFrom(terminate)
                    effects.append(Deliver(child_id, notice, durable=True))
        effects.append(CancelTimers())
        notice_parent = _parent_notice(view, now, completed.workflowStatus, completed)
        if notice_parent is not None:
            effects.append(notice_parent)
    return TurnResult(history, len(past), effects=effects)
