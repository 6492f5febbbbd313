"""The activity actor (docs/design/workflows.md §3.2): actor ``<instanceId>::<taskId>`` of type
``….activity`` sends one ``ActivityRequest`` to a worker, waits for its answer and hands a
``TaskCompleted`` / ``TaskFailed{taskScheduledId}`` to the workflow actor. A worker that
disconnects first gets the request sent again to another (``dispatch.py``); a result that
arrives twice is dropped by the workflow actor's de-duplication. The SDK does the retries
(``RetryPolicy``): the sidecar only sees a failed task, then a timer, then a new task.
"""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from pylotto.capabilities.workflows.api import WorkItemSink
from pylotto.capabilities.workflows.applier import new_event
from pylotto.proto import durabletask as dt


async def run_activity(sink: WorkItemSink, request: dt.service.ActivityRequest
                       ) -> dt.history.HistoryEvent:
    """Run ``request`` on a worker: the event that reports its outcome to the instance."""
    response = await sink.activity(request)
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    outcome = new_event(now)
    if response.HasField("failureDetails"):
        failed = outcome.taskFailed
        failed.taskScheduledId = request.taskId
        failed.failureDetails.CopyFrom(response.failureDetails)
        failed.taskExecutionId = request.taskExecutionId
    else:
        done = outcome.taskCompleted
        done.taskScheduledId = request.taskId
        if response.HasField("result"):
            done.result.CopyFrom(response.result)
        done.taskExecutionId = request.taskExecutionId
    return outcome
