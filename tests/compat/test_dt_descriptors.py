"""The Durable Task stubs pylotto imports (src/pylotto/proto/durabletask.py, from the pinned
``dapr`` wheel) still carry the service name and the field numbers the engine relies on:
a later SDK (or our own generated stubs) that moved one would break the wire silently."""

from __future__ import annotations

import pytest

from pylotto.proto import durabletask as dt

SERVICE_METHODS = {
    "Hello", "StartInstance", "GetInstance", "WaitForInstanceStart",
    "WaitForInstanceCompletion", "RaiseEvent", "TerminateInstance", "SuspendInstance",
    "ResumeInstance", "PurgeInstances", "GetWorkItems", "CompleteActivityTask",
    "CompleteOrchestratorTask", "CompleteWorkflowTask", "RerunWorkflowFromEvent",
    "ListInstanceIDs", "GetInstanceHistory"}

FIELDS = [
    (dt.service.WorkItem, {"workflowRequest": 1, "activityRequest": 2, "healthPing": 6,
                           "completionToken": 10}),
    (dt.service.WorkflowRequest, {"instanceId": 1, "executionId": 2, "pastEvents": 3,
                                  "newEvents": 4}),
    (dt.service.WorkflowResponse, {"instanceId": 1, "actions": 2, "customStatus": 3,
                                   "completionToken": 4}),
    (dt.service.ActivityRequest, {"name": 1, "version": 2, "input": 3,
                                  "workflowInstance": 4, "taskId": 5, "taskExecutionId": 7}),
    (dt.service.ActivityResponse, {"instanceId": 1, "taskId": 2, "result": 3,
                                   "failureDetails": 4, "completionToken": 5}),
    (dt.service.GetWorkItemsRequest, {"capabilities": 4}),
    (dt.service.CreateInstanceRequest, {"instanceId": 1, "name": 2, "version": 3, "input": 4,
                                        "scheduledStartTimestamp": 5, "executionId": 7,
                                        "enforceUniqueInstanceId": 10, "router": 11}),
    (dt.service.GetInstanceRequest, {"instanceId": 1, "getInputsAndOutputs": 2}),
    (dt.service.GetInstanceResponse, {"exists": 1, "workflowState": 2}),
    (dt.service.RaiseEventRequest, {"instanceId": 1, "name": 2, "input": 3}),
    (dt.service.TerminateRequest, {"instanceId": 1, "output": 2, "recursive": 3}),
    (dt.service.SuspendRequest, {"instanceId": 1, "reason": 2}),
    (dt.service.ResumeRequest, {"instanceId": 1, "reason": 2}),
    (dt.service.PurgeInstancesRequest, {"instanceId": 1, "purgeInstanceFilter": 2,
                                        "recursive": 3, "force": 4}),
    (dt.service.PurgeInstancesResponse, {"deletedInstanceCount": 1, "isComplete": 2}),
    (dt.service.ListInstanceIDsRequest, {"continuationToken": 1, "pageSize": 2}),
    (dt.service.ListInstanceIDsResponse, {"instanceIds": 1, "continuationToken": 2}),
    (dt.service.GetInstanceHistoryResponse, {"events": 1}),
    (dt.orchestration.WorkflowState, {"instanceId": 1, "name": 2, "workflowStatus": 4,
                                      "createdTimestamp": 6, "lastUpdatedTimestamp": 7,
                                      "input": 8, "output": 9, "customStatus": 10,
                                      "failureDetails": 11, "executionId": 12,
                                      "completedTimestamp": 13, "parentInstanceId": 14}),
    (dt.orchestration.TaskFailureDetails, {"errorType": 1, "errorMessage": 2,
                                           "stackTrace": 3, "innerFailure": 4,
                                           "isNonRetriable": 5}),
    (dt.history.HistoryEvent, {"eventId": 1, "timestamp": 2, "executionStarted": 3,
                               "executionCompleted": 4, "executionTerminated": 5,
                               "taskScheduled": 6, "taskCompleted": 7, "taskFailed": 8,
                               "childWorkflowInstanceCreated": 9,
                               "childWorkflowInstanceCompleted": 10,
                               "childWorkflowInstanceFailed": 11, "timerCreated": 12,
                               "timerFired": 13, "workflowStarted": 14, "eventSent": 16,
                               "eventRaised": 17, "executionSuspended": 21,
                               "executionResumed": 22}),
    (dt.history.ExecutionStartedEvent, {"name": 1, "version": 2, "input": 3,
                                        "workflowInstance": 4, "parentInstance": 5}),
    (dt.history.ExecutionCompletedEvent, {"workflowStatus": 1, "result": 2,
                                          "failureDetails": 3}),
    (dt.history.TaskCompletedEvent, {"taskScheduledId": 1, "result": 2,
                                     "taskExecutionId": 3}),
    (dt.history.TaskFailedEvent, {"taskScheduledId": 1, "failureDetails": 2}),
    (dt.history.TimerFiredEvent, {"fireAt": 1, "timerId": 2}),
    (dt.history.ChildWorkflowInstanceCompletedEvent, {"taskScheduledId": 1, "result": 2}),
    (dt.history.ChildWorkflowInstanceFailedEvent, {"taskScheduledId": 1,
                                                   "failureDetails": 2}),
    (dt.history.EventRaisedEvent, {"name": 1, "input": 2}),
    (dt.actions.WorkflowAction, {"id": 1, "scheduleTask": 2, "createChildWorkflow": 3,
                                 "createTimer": 4, "sendEvent": 5, "completeWorkflow": 6,
                                 "terminateWorkflow": 7}),
    (dt.actions.ScheduleTaskAction, {"name": 1, "version": 2, "input": 3,
                                     "taskExecutionId": 5}),
    (dt.actions.CreateTimerAction, {"fireAt": 1, "name": 2, "createTimer": 3,
                                    "externalEvent": 4, "activityRetry": 5}),
    (dt.actions.CreateChildWorkflowAction, {"instanceId": 1, "name": 2, "input": 4}),
    (dt.actions.SendEventAction, {"instance": 1, "name": 2, "data": 3}),
    (dt.actions.CompleteWorkflowAction, {"workflowStatus": 1, "result": 2,
                                         "carryoverEvents": 5, "failureDetails": 6}),
    (dt.actions.TerminateWorkflowAction, {"instanceId": 1, "reason": 2, "recurse": 3}),
]


def test_the_service_has_no_package_and_its_methods() -> None:
    descriptor = dt.service.DESCRIPTOR
    assert descriptor.package == ""
    service = descriptor.services_by_name["TaskHubSidecarService"]
    assert service.full_name == dt.SERVICE == "TaskHubSidecarService"
    assert {m.name for m in service.methods} == SERVICE_METHODS
    assert service.methods_by_name["GetWorkItems"].server_streaming


@pytest.mark.parametrize(("message", "numbers"), FIELDS, ids=lambda v: getattr(
    getattr(v, "DESCRIPTOR", None), "name", ""))
def test_field_numbers(message: type, numbers: dict[str, int]) -> None:
    fields = message.DESCRIPTOR.fields_by_name  # type: ignore[attr-defined]
    assert {name: fields[name].number for name in numbers} == numbers


def test_status_numbers() -> None:
    assert (dt.RUNNING, dt.COMPLETED, dt.CONTINUED_AS_NEW, dt.FAILED, dt.CANCELED,
            dt.TERMINATED, dt.PENDING, dt.SUSPENDED, dt.STALLED) == (0, 1, 2, 3, 4, 5, 6, 7, 8)
