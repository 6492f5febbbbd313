"""The applier (docs/design/workflows.md §1.4): each action row, continue-as-new, terminate,
de-duplication of completions."""

from __future__ import annotations

from pylotto.capabilities.workflows.api import (
    CancelTimers,
    Deliver,
    RunActivity,
    RunAgain,
    StartChild,
    StartTimer,
)
from pylotto.capabilities.workflows.applier import apply, deduplicated, new_event, outstanding
from pylotto.capabilities.workflows.state import project
from pylotto.proto import durabletask as dt
from tests.unit.capabilities.workflows.events import (
    child,
    complete,
    now,
    raised,
    schedule,
    send,
    started,
    task_completed,
    task_failed,
    terminate_other,
    terminated,
    timer,
    timer_fired,
    workflow_started,
)


def _turn(actions: list[dt.actions.WorkflowAction], past: list | None = None,
          new: list | None = None, start: dt.history.HistoryEvent | None = None):
    past = past if past is not None else [workflow_started(), start or started()]
    new = new if new is not None else [workflow_started()]
    view = project([*past, *new])
    return apply("i1", view, past, new, actions, now())


def kinds(events: list[dt.history.HistoryEvent]) -> list[str | None]:
    return [e.WhichOneof("eventType") for e in events]


def test_schedule_task_appends_task_scheduled_and_runs_the_activity() -> None:
    result = _turn([schedule(0, "step1", "10")])
    assert kinds(result.history)[-1] == "taskScheduled"
    scheduled = result.history[-1]
    assert scheduled.eventId == 0
    assert scheduled.taskScheduled.name == "step1"
    assert scheduled.taskScheduled.input.value == "10"
    assert scheduled.taskScheduled.taskExecutionId == "exec-0"
    assert result.appended_from == 2
    [effect] = result.effects
    assert isinstance(effect, RunActivity)
    assert effect.task_id == 0
    assert effect.request.name == "step1"
    assert effect.request.taskId == 0
    assert effect.request.workflowInstance.instanceId == "i1"
    assert effect.request.workflowInstance.executionId.value == "e1"


def test_create_timer_appends_timer_created_with_its_origin() -> None:
    result = _turn([timer(3, 1_700_000_100, event_name="approval")])
    created = result.history[-1]
    assert created.eventId == 3
    assert created.timerCreated.fireAt.seconds == 1_700_000_100
    assert created.timerCreated.WhichOneof("origin") == "externalEvent"
    assert created.timerCreated.externalEvent.name == "approval"
    assert result.effects == [StartTimer(3, 1_700_000_100 * 10**9)]


def test_create_child_starts_it_with_its_parent() -> None:
    result = _turn([child(1, "i1-child")])
    assert result.history[-1].childWorkflowInstanceCreated.instanceId == "i1-child"
    [effect] = result.effects
    assert isinstance(effect, StartChild)
    assert effect.instance_id == "i1-child"
    start = effect.started.executionStarted
    assert start.name == "childwf"
    assert start.input.value == '"ci"'
    assert start.parentInstance.taskScheduledId == 1
    assert start.parentInstance.workflowInstance.instanceId == "i1"
    assert start.parentInstance.name.value == "wf"
    assert start.workflowInstance.executionId.value


def test_send_event_appends_event_sent_and_delivers_event_raised() -> None:
    result = _turn([send(2, "other", "ping")])
    assert result.history[-1].eventSent.instanceId == "other"
    [effect] = result.effects
    assert isinstance(effect, Deliver)
    assert effect.instance_id == "other"
    assert effect.event.eventRaised.name == "ping"
    assert effect.event.eventRaised.input.value == '"d"'
    assert effect.durable  # committed into the outbox: the history cannot recompute it


def test_terminate_other_delivers_execution_terminated_without_history() -> None:
    result = _turn([terminate_other(4, "other")])
    assert len(result.history) == 3  # only the turn's WorkflowStarted
    [effect] = result.effects
    assert isinstance(effect, Deliver)
    assert effect.event.executionTerminated.recurse
    assert effect.event.executionTerminated.input.value == '"r"'
    assert effect.durable


def test_complete_appends_execution_completed_and_cancels_timers() -> None:
    result = _turn([schedule(0), complete(1, dt.COMPLETED, '"done"')])
    assert kinds(result.history)[-1] == "executionCompleted"
    done = result.history[-1].executionCompleted
    assert done.workflowStatus == dt.COMPLETED
    assert done.result.value == '"done"'
    assert CancelTimers() in result.effects
    assert project(result.history).status == dt.COMPLETED


def test_failed_child_tells_its_parent() -> None:
    start = started(parent="p1", task=7)
    result = _turn([complete(0, dt.FAILED, None, failure="bad")], start=start)
    notice = [e for e in result.effects if isinstance(e, Deliver)]
    assert notice[0].instance_id == "p1"
    failed = notice[0].event.childWorkflowInstanceFailed
    assert failed.taskScheduledId == 7
    assert failed.failureDetails.errorMessage == "bad"


def test_completed_child_tells_its_parent_its_result() -> None:
    result = _turn([complete(0, dt.COMPLETED, '"r"')], start=started(parent="p1", task=2))
    [notice] = [e for e in result.effects if isinstance(e, Deliver)]
    assert notice.event.childWorkflowInstanceCompleted.taskScheduledId == 2
    assert notice.event.childWorkflowInstanceCompleted.result.value == '"r"'


def test_continue_as_new_replaces_the_history_and_carries_events_over() -> None:
    carried = raised("later")
    result = _turn([schedule(0), complete(1, dt.CONTINUED_AS_NEW, '{"n": 2}',
                                          carryover=[carried])])
    assert result.history == []
    assert result.appended_from == 0
    assert kinds(result.carried) == ["executionStarted", "eventRaised"]
    restart = result.carried[0].executionStarted
    assert restart.name == "wf"
    assert restart.input.value == '{"n": 2}'
    assert restart.workflowInstance.executionId.value not in ("", "e1")
    assert result.carried[1].eventRaised.name == "later"
    assert result.effects == [CancelTimers(), RunAgain()]


def test_terminate_wins_over_continue_as_new() -> None:
    result = _turn([complete(0, dt.CONTINUED_AS_NEW, '"again"')],
                   new=[workflow_started(), terminated('"bye"')])
    assert result.carried == []
    done = result.history[-1].executionCompleted
    assert done.workflowStatus == dt.TERMINATED
    assert done.result.value == '"bye"'


def test_terminate_force_completes_and_drops_pending_work() -> None:
    result = _turn([schedule(5)], new=[workflow_started(), terminated()])
    assert result.history[-1].executionCompleted.workflowStatus == dt.TERMINATED
    assert not any(isinstance(e, RunActivity) for e in result.effects)


def test_recursive_terminate_reaches_unfinished_children() -> None:
    past = [workflow_started(), started()]
    first = _turn([child(0, "c-done"), child(1, "c-open")], past=past)
    done = task_completed(0)
    done.ClearField("taskCompleted")
    done.childWorkflowInstanceCompleted.taskScheduledId = 0
    result = _turn([], past=first.history,
                   new=[workflow_started(), done, terminated(recurse=True)])
    targets = [e.instance_id for e in result.effects
               if isinstance(e, Deliver) and e.event.HasField("executionTerminated")]
    assert targets == ["c-open"]


def test_a_finished_instance_takes_no_more_actions() -> None:
    past = [workflow_started(), started()]
    first = _turn([complete(0, dt.COMPLETED)], past=past)
    result = _turn([schedule(1)], past=first.history)
    assert result.effects == []
    assert kinds(result.history)[-1] == "workflowStarted"


def test_duplicate_completions_are_dropped() -> None:
    history = [workflow_started(), started(), task_completed(0), timer_fired(2)]
    inbox = [task_completed(0), task_failed(0), task_completed(1), task_completed(1),
             timer_fired(2), timer_fired(3), started(), raised("e"), raised("e")]
    kept = deduplicated(history, inbox)
    assert kinds(kept) == ["taskCompleted", "timerFired", "eventRaised", "eventRaised"]
    assert kept[0].taskCompleted.taskScheduledId == 1
    assert kept[1].timerFired.timerId == 3


def test_outstanding_after_a_restart() -> None:
    """What a committed history still waits for: the open activity, timer and child; not
    the ones that have their outcome."""
    first = _turn([schedule(0, "a"), schedule(1, "b"), timer(2, 1_700_000_100),
                   timer(3, 1_700_000_200), child(4, "c-open"), child(5, "c-done")])
    done_child = new_event(now())
    done_child.childWorkflowInstanceCompleted.taskScheduledId = 5
    history = [*first.history, workflow_started(), task_completed(0), timer_fired(2),
               done_child]
    effects = outstanding("i1", project(history), history, now())
    assert [e.task_id for e in effects if isinstance(e, RunActivity)] == [1]
    assert [e.timer_id for e in effects if isinstance(e, StartTimer)] == [3]
    [start] = [e for e in effects if isinstance(e, StartChild)]
    assert start.instance_id == "c-open"
    assert start.started.executionStarted.parentInstance.taskScheduledId == 4


def test_outstanding_of_a_finished_child_is_its_notice_to_the_parent() -> None:
    past = [workflow_started(), started(parent="p1", task=3)]
    result = _turn([complete(0, dt.COMPLETED, '"r"')], past=past)
    [notice] = outstanding("i1", project(result.history), result.history, now())
    assert isinstance(notice, Deliver)
    assert notice.instance_id == "p1"
    assert notice.event.childWorkflowInstanceCompleted.taskScheduledId == 3
    finished_alone = _turn([complete(0, dt.COMPLETED)])
    assert outstanding("i1", project(finished_alone.history), finished_alone.history,
                       now()) == []
