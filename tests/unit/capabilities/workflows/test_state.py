"""Status projection from history and the instance-id rules (docs/design/workflows.md §3.1,
§2.1)."""

from __future__ import annotations

import pytest

from pylotto.capabilities.workflows.applier import new_event
from pylotto.capabilities.workflows.names import (
    activity_type,
    history_key,
    inbox_key,
    validate_instance_id,
    workflow_type,
)
from pylotto.capabilities.workflows.state import InstanceState, project
from pylotto.core.errors import InvalidArgument
from pylotto.proto import durabletask as dt
from tests.unit.capabilities.workflows.events import (
    complete,
    now,
    raised,
    started,
    workflow_started,
)


def _suspended() -> dt.history.HistoryEvent:
    event = new_event(now())
    event.executionSuspended.SetInParent()
    return event


def _resumed() -> dt.history.HistoryEvent:
    event = new_event(now())
    event.executionResumed.SetInParent()
    return event


def _completed(status: int) -> dt.history.HistoryEvent:
    event = new_event(now(), 3)
    action = complete(3, status, '"o"', failure="f" if status == dt.FAILED else "")
    event.executionCompleted.workflowStatus = action.completeWorkflow.workflowStatus
    event.executionCompleted.result.CopyFrom(action.completeWorkflow.result)
    if action.completeWorkflow.HasField("failureDetails"):
        event.executionCompleted.failureDetails.CopyFrom(action.completeWorkflow.failureDetails)
    return event


def test_no_start_is_pending() -> None:
    assert project([]).status == dt.PENDING
    assert project([workflow_started(), raised("e")]).status == dt.PENDING


def test_started_is_running_with_name_input_and_times() -> None:
    view = project([workflow_started(), started(name="chain", input_="10")])
    assert view.status == dt.RUNNING
    assert (view.name, view.input, view.execution_id) == ("chain", "10", "e1")
    assert view.created_ns == now().ToNanoseconds()


@pytest.mark.parametrize("status", [dt.COMPLETED, dt.FAILED, dt.TERMINATED])
def test_the_last_completion_gives_the_final_status(status: int) -> None:
    view = project([workflow_started(), started(), _completed(status)])
    assert view.status == status
    assert view.output == '"o"'
    assert (view.failure is not None) == (status == dt.FAILED)
    assert view.completed_ns


def test_suspend_and_resume() -> None:
    events = [workflow_started(), started(), _suspended()]
    assert project(events).status == dt.SUSPENDED
    assert project([*events, _resumed()]).status == dt.RUNNING
    assert project([*events, _resumed(), _suspended()]).status == dt.SUSPENDED


def test_a_child_knows_its_parent() -> None:
    view = project([started(parent="p", task=4)])
    assert (view.parent_id, view.parent_task_id, view.parent_name) == ("p", 4, "parentwf")


def test_one_transaction_per_turn_writes_only_what_changed() -> None:
    state = InstanceState("i1")
    state.history = [workflow_started(), started()]
    state.stored_history = 2
    state.add_to_inbox(raised("a"))
    state.add_to_inbox(raised("b"))
    state.history += [workflow_started(), raised("a"), raised("b")]
    consumed = sorted(state.inbox)
    state.inbox.clear()
    ops = state.commit_ops(consumed, 2, [])
    assert [(op.operation, op.key) for op in ops] == [
        ("upsert", history_key(2)), ("upsert", history_key(3)), ("upsert", history_key(4)),
        ("delete", inbox_key(0)), ("delete", inbox_key(1)), ("upsert", "metadata")]


def test_continue_as_new_deletes_the_old_history_keys() -> None:
    state = InstanceState("i1")
    state.stored_history = 3
    state.history = []
    state.inbox[5] = started()
    ops = state.commit_ops([2], 0, [5])
    assert [(op.operation, op.key) for op in ops] == [
        ("delete", history_key(0)), ("delete", history_key(1)), ("delete", history_key(2)),
        ("delete", inbox_key(2)), ("upsert", inbox_key(5)), ("upsert", "metadata")]


@pytest.mark.parametrize("instance_id", ["a", "A-b_9", "x" * 64, "0123abcdef", "é"])
def test_valid_instance_ids(instance_id: str) -> None:
    validate_instance_id(instance_id)


@pytest.mark.parametrize(("instance_id", "where", "text"), [
    ("", "workflows.instance_id_missing", "no instance ID was provided"),
    ("x" * 65, "workflows.instance_id_too_long",
     "workflow instance ID exceeds the max length of 64 characters"),
    ("a b", "workflows.instance_id_invalid",
     "workflow instance ID 'a b' is invalid: only alphanumeric and underscore characters "
     "are allowed"),
    ("a.b", "workflows.instance_id_invalid", "is invalid"),
    ("a||b", "workflows.instance_id_invalid", "is invalid"),
    ("a/b", "workflows.instance_id_invalid", "is invalid"),
    ("é" * 33, "workflows.instance_id_too_long", "max length of 64"),
])
def test_invalid_instance_ids(instance_id: str, where: str, text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_instance_id(instance_id)
    assert err.value.where == where
    assert text in err.value.message


def test_type_names() -> None:
    assert workflow_type("app") == "dapr.internal.default.app.workflow"
    assert activity_type("app") == "dapr.internal.default.app.activity"
