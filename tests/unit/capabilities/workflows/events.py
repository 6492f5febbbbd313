"""Building Durable Task events and actions for the workflow unit tests."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from pylotto.capabilities.workflows.applier import new_event
from pylotto.proto import durabletask as dt

HistoryEvent = dt.history.HistoryEvent


def now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromSeconds(1_700_000_000)
    return stamp


def started(name: str = "wf", input_: str | None = '"in"', instance: str = "i1",
            execution: str = "e1", parent: str = "", task: int = -1) -> HistoryEvent:
    event = new_event(now())
    event.executionStarted.name = name
    if input_ is not None:
        event.executionStarted.input.value = input_
    event.executionStarted.workflowInstance.instanceId = instance
    event.executionStarted.workflowInstance.executionId.value = execution
    if parent:
        event.executionStarted.parentInstance.taskScheduledId = task
        event.executionStarted.parentInstance.name.value = "parentwf"
        event.executionStarted.parentInstance.workflowInstance.instanceId = parent
    return event


def task_completed(task: int, result: str = "1") -> HistoryEvent:
    event = new_event(now())
    event.taskCompleted.taskScheduledId = task
    event.taskCompleted.result.value = result
    return event


def task_failed(task: int) -> HistoryEvent:
    event = new_event(now())
    event.taskFailed.taskScheduledId = task
    event.taskFailed.failureDetails.errorMessage = "boom"
    return event


def timer_fired(timer: int) -> HistoryEvent:
    event = new_event(now())
    event.timerFired.timerId = timer
    return event


def raised(name: str, value: str = '"v"') -> HistoryEvent:
    event = new_event(now())
    event.eventRaised.name = name
    event.eventRaised.input.value = value
    return event


def terminated(reason: str = '"stop"', recurse: bool = False) -> HistoryEvent:
    event = new_event(now())
    event.executionTerminated.input.value = reason
    event.executionTerminated.recurse = recurse
    return event


def workflow_started() -> HistoryEvent:
    event = new_event(now())
    event.workflowStarted.SetInParent()
    return event


def schedule(action_id: int, name: str = "act", input_: str = '"x"'
             ) -> dt.actions.WorkflowAction:
    action = dt.actions.WorkflowAction(id=action_id)
    action.scheduleTask.name = name
    action.scheduleTask.input.value = input_
    action.scheduleTask.taskExecutionId = f"exec-{action_id}"
    return action


def timer(action_id: int, fire_at_s: int, event_name: str = "") -> dt.actions.WorkflowAction:
    action = dt.actions.WorkflowAction(id=action_id)
    action.createTimer.fireAt.FromSeconds(fire_at_s)
    if event_name:
        action.createTimer.externalEvent.name = event_name
    else:
        action.createTimer.createTimer.SetInParent()
    return action


def child(action_id: int, instance: str, name: str = "childwf") -> dt.actions.WorkflowAction:
    action = dt.actions.WorkflowAction(id=action_id)
    action.createChildWorkflow.instanceId = instance
    action.createChildWorkflow.name = name
    action.createChildWorkflow.input.value = '"ci"'
    return action


def send(action_id: int, instance: str, name: str) -> dt.actions.WorkflowAction:
    action = dt.actions.WorkflowAction(id=action_id)
    action.sendEvent.instance.instanceId = instance
    action.sendEvent.name = name
    action.sendEvent.data.value = '"d"'
    return action


def terminate_other(action_id: int, instance: str) -> dt.actions.WorkflowAction:
    action = dt.actions.WorkflowAction(id=action_id)
    action.terminateWorkflow.instanceId = instance
    action.terminateWorkflow.reason.value = '"r"'
    action.terminateWorkflow.recurse = True
    return action


def complete(action_id: int, status: int, result: str | None = '"out"',
             carryover: list[HistoryEvent] | None = None,
             failure: str = "") -> dt.actions.WorkflowAction:
    action = dt.actions.WorkflowAction(id=action_id)
    done = action.completeWorkflow
    done.workflowStatus = status  # type: ignore[assignment]
    if result is not None:
        done.result.value = result
    if failure:
        done.failureDetails.errorType = "ValueError"
        done.failureDetails.errorMessage = failure
    for event in carryover or []:
        done.carryoverEvents.append(event)
    return action
