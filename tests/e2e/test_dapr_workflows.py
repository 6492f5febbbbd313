"""Dapr workflows on one sidecar (docs/workflows.md), with the workflow SDK that ships in the
pinned ``dapr`` (``dapr.ext.workflow``: ``WorkflowRuntime`` in the app, tests/e2e/apps/
wf_app.py, and ``DaprWorkflowClient`` here), unchanged, through ``pylotto run``. The
workflow state is in the actor state store (Redis, marked ``actorStateStore: "true"``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from dapr.ext.workflow import WorkflowStatus
from dapr.proto.runtime.v1 import dapr_pb2_grpc, metadata_pb2, workflow_pb2

from pylotto.proto import durabletask as dt
from tests.e2e.workflows_env import TIMEOUT, Env, running, wid

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running(tmp_path_factory.mktemp("workflows")) as started:
        yield started


def test_task_chaining(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("task_chain", input=10,
                                                   instance_id=wid("chain"))
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == [11, 22, 20]
    assert state.name == "task_chain"
    assert json.loads(state.serialized_input) == 10


def test_fan_out_fan_in_over_100_activities(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("batch_processing", input=100,
                                                   instance_id=wid("fan"))
    state = env.done(instance_id, timeout=120)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == 2 * sum(range(1, 101))
    assert {row["item"] for row in env.events("work_item")} >= set(range(1, 101))
    assert {"event": "results", "total": 10100} in env.events("results")


def test_external_event_in_time_is_approved(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow(
        "purchase_order_wf", input={"cost": 2000, "product": "pc", "timeout": 30},
        instance_id=wid("approve"))
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    deadline = time.monotonic() + TIMEOUT
    while not [r for r in env.events("approval_requested") if r["product"] == "pc"]:
        assert time.monotonic() < deadline, env.logs()
        time.sleep(0.1)
    env.client.raise_workflow_event(instance_id, "approval_received", data={"approver": "Me"})
    state = env.done(instance_id)
    assert json.loads(state.serialized_output) == "Approved by 'Me'"


def test_no_external_event_times_out(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow(
        "purchase_order_wf", input={"cost": 2000, "product": "late", "timeout": 1},
        instance_id=wid("timeout"))
    started = time.monotonic()
    state = env.done(instance_id)
    assert json.loads(state.serialized_output) == "Cancelled"
    assert time.monotonic() - started >= 1.0


def test_external_event_raised_before_the_wait_is_buffered(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("wait_event", input=2.0,
                                                   instance_id=wid("early"))
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    env.client.raise_workflow_event(instance_id, "go", data={"early": True})
    state = env.done(instance_id)
    assert json.loads(state.serialized_output) == {"early": True}


def test_an_instance_id_with_a_non_ascii_letter_and_its_timer(env: Env) -> None:
    """``é`` is a letter for daprd's id check, not for the scheduler's job names: the timer
    (3 s: still ahead when the turn's effects run) is kept in memory, logged, and fires."""
    instance_id = env.client.schedule_new_workflow("wait_event", input=3.0,
                                                   instance_id=wid("café"))
    env.client.raise_workflow_event(instance_id, "go", data="late enough")
    state = env.done(instance_id)
    assert json.loads(state.serialized_output) == "late enough"
    assert f"workflows: {instance_id}: timer 1 kept in memory only" in env.car.logs(), \
        env.logs()  # the SDK numbers the workflow's actions from 1


def test_monitor_continues_as_new(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow(
        "status_monitor", input={"checks": 0, "limit": 4, "last": ""},
        instance_id=wid("monitor"))
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == {"checks": 4, "limit": 4,
                                                   "last": "unhealthy"}
    # only the last generation is kept: one start, one activity, one timer-less completion
    kinds = [event.event_type.name for event in env.client.get_workflow_history(instance_id)]
    assert kinds.count("EXECUTION_STARTED") == 1, kinds
    assert kinds.count("TASK_SCHEDULED") == 1, kinds
    assert kinds[-1] == "EXECUTION_COMPLETED", kinds


def test_child_workflow(env: Env) -> None:
    parent = wid("parent")
    state = env.done(env.client.schedule_new_workflow("main_workflow", input=False,
                                                      instance_id=parent))
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == f"child said hello from {parent}-child"
    child = env.client.get_workflow_state(parent + "-child")
    assert child is not None and child.runtime_status == WorkflowStatus.COMPLETED


def test_failing_child_raises_task_failed_in_the_parent(env: Env) -> None:
    parent = wid("parent")
    state = env.done(env.client.schedule_new_workflow("main_workflow", input=True,
                                                      instance_id=parent))
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    output = json.loads(state.serialized_output)
    assert output.startswith("child failed:"), output
    assert "the child's activity failed" in output
    child = env.client.get_workflow_state(parent + "-child")
    assert child is not None and child.runtime_status == WorkflowStatus.FAILED


def test_activity_retry_policy(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("retrying", input=2,
                                                   instance_id=wid("retry"))
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == 3
    attempts = [r["attempt"] for r in env.events("flaky") if r["id"] == instance_id]
    assert attempts == [1, 2, 3]


def test_terminate(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=wid("term"))
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    env.client.terminate_workflow(instance_id, output="bye")
    state = env.status_becomes(instance_id, WorkflowStatus.TERMINATED)
    assert json.loads(state.serialized_output) == "bye"


def test_recursive_terminate_reaches_the_child(env: Env) -> None:
    parent = env.client.schedule_new_workflow("parent_of_waiter", instance_id=wid("rec"))
    child = parent + "-w"
    env.status_becomes(child, WorkflowStatus.RUNNING)
    env.client.terminate_workflow(parent)  # recursive by default
    env.status_becomes(parent, WorkflowStatus.TERMINATED)
    env.status_becomes(child, WorkflowStatus.TERMINATED)


def test_suspend_resume_and_an_event_sent_while_suspended(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=wid("pause"))
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    env.client.raise_workflow_event(instance_id, "tick", data="one")
    deadline = time.monotonic() + TIMEOUT
    while (env.client.get_workflow_state(instance_id).serialized_custom_status or "") \
            != json.dumps({"count": 1}):
        assert time.monotonic() < deadline, env.logs()
        time.sleep(0.1)
    env.client.pause_workflow(instance_id)
    env.status_becomes(instance_id, WorkflowStatus.SUSPENDED)
    env.client.raise_workflow_event(instance_id, "tick", data="stop")

    def raised() -> int:
        return [e.event_type.name for e in env.client.get_workflow_history(instance_id)
                ].count("EVENT_RAISED")

    while raised() < 2:  # delivered and in history, but held back by the SDK
        assert time.monotonic() < deadline, env.logs()
        time.sleep(0.1)
    assert env.client.get_workflow_state(instance_id).runtime_status \
        == WorkflowStatus.SUSPENDED
    env.client.resume_workflow(instance_id)
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == 2


def test_purge(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=wid("purge"))
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    with pytest.raises(grpc.RpcError) as running:
        env.client.purge_workflow(instance_id)
    assert "orchestration has not yet completed" in str(running.value)
    env.client.raise_workflow_event(instance_id, "tick", data="stop")
    env.done(instance_id)
    assert instance_id in list(env.client.iter_workflow_instance_ids(page_size=7))
    env.client.purge_workflow(instance_id)
    assert env.client.get_workflow_state(instance_id) is None
    assert instance_id not in list(env.client.iter_workflow_instance_ids())
    with pytest.raises(grpc.RpcError) as gone:
        env.client.raise_workflow_event(instance_id, "tick", data="late")
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_workflow_name_fails(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("no_such_workflow",
                                                   instance_id=wid("unknown"))
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details is not None
    assert "no_such_workflow" in state.failure_details.message


def test_duplicate_instance_id_of_an_active_workflow(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=wid("dup"))
    with pytest.raises(grpc.RpcError) as dup:
        env.client.schedule_new_workflow("waiter", instance_id=instance_id)
    assert dup.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert f"an active workflow with ID '{instance_id}' already exists" in str(dup.value)
    env.client.terminate_workflow(instance_id)


def test_bad_instance_id_is_refused(env: Env) -> None:
    with pytest.raises(grpc.RpcError) as bad:
        env.client.schedule_new_workflow("waiter", instance_id="a" * 65)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as chars:
        env.client.schedule_new_workflow("waiter", instance_id="no spaces")
    assert chars.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_rerun_from_event_is_unimplemented(env: Env) -> None:
    channel = grpc.insecure_channel(env.car.dapr_grpc_address)
    stub = dt.service_grpc.TaskHubSidecarServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.RerunWorkflowFromEvent(dt.service.RerunWorkflowFromEventRequest(sourceInstanceID="x"))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "RerunWorkflowFromEvent" in (err.value.details() or "")
    channel.close()


# ---- the Dapr management API (gRPC …WorkflowBeta1 / Alpha1, HTTP /v1.0-beta1/workflows) ----

def _http(env: Env, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    request = urllib.request.Request(f"{env.car.dapr_http_url}{path}", data=body or None,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def _dapr(env: Env) -> Any:
    channel = grpc.insecure_channel(env.car.dapr_grpc_address)
    return channel, dapr_pb2_grpc.DaprStub(channel)


def test_http_management_start_get_and_a_run_to_completion(env: Env) -> None:
    instance_id = wid("http")
    status, body = _http(env, "POST", f"/v1.0-beta1/workflows/dapr/task_chain/start"
                         f"?instanceID={instance_id}", b"5")
    assert (status, body) == (202, {"instanceID": instance_id})
    state = env.done(instance_id)
    assert json.loads(state.serialized_output) == [6, 12, 14]
    status, got = _http(env, "GET", f"/v1.0-beta1/workflows/dapr/{instance_id}")
    assert status == 200
    assert got["instanceID"] == instance_id
    assert got["workflowName"] == "task_chain"
    assert got["runtimeStatus"] == "COMPLETED"
    assert got["properties"]["dapr.workflow.input"] == "5"
    assert got["properties"]["dapr.workflow.output"] == "[6, 12, 14]"
    assert got["createdAt"] and got["lastUpdatedAt"]


def test_http_management_raise_pause_resume_terminate_purge(env: Env) -> None:
    base = "/v1.0/workflows/dapr"
    status, body = _http(env, "POST", f"{base}/waiter/start")
    assert status == 202
    instance_id = body["instanceID"]
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    assert _http(env, "POST", f"{base}/{instance_id}/pause")[0] == 202
    env.status_becomes(instance_id, WorkflowStatus.SUSPENDED)
    assert _http(env, "GET", f"{base}/{instance_id}")[1]["runtimeStatus"] == "SUSPENDED"
    assert _http(env, "POST", f"{base}/{instance_id}/resume")[0] == 202
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    assert _http(env, "POST", f"{base}/{instance_id}/raiseEvent/tick", b'"one"')[0] == 202
    deadline = time.monotonic() + TIMEOUT
    while (_http(env, "GET", f"{base}/{instance_id}")[1]["properties"]
           .get("dapr.workflow.custom_status")) != json.dumps({"count": 1}):
        assert time.monotonic() < deadline, env.logs()
        time.sleep(0.1)
    assert _http(env, "POST", f"{base}/{instance_id}/terminate")[0] == 202
    env.status_becomes(instance_id, WorkflowStatus.TERMINATED)
    assert _http(env, "POST", f"{base}/{instance_id}/purge")[0] == 202
    status, body = _http(env, "GET", f"{base}/{instance_id}")
    assert status == 404
    assert body["errorCode"] == "ERR_INSTANCE_ID_NOT_FOUND"
    assert body["message"] == ("unable to find workflow with the provided instance ID: "
                               f"{instance_id}")


def test_grpc_management_start_get_raise_and_alpha1_twins(env: Env) -> None:
    channel, stub = _dapr(env)
    with channel:
        instance_id = wid("grpc")
        started = stub.StartWorkflowBeta1(workflow_pb2.StartWorkflowRequest(
            instance_id=instance_id, workflow_component="dapr", workflow_name="wait_event",
            input=b"0.1"), timeout=30)
        assert started.instance_id == instance_id
        env.status_becomes(instance_id, WorkflowStatus.RUNNING)
        stub.RaiseEventWorkflowAlpha1(workflow_pb2.RaiseEventWorkflowRequest(
            instance_id=instance_id, workflow_component="dapr", event_name="go",
            event_data=b'"went"'), timeout=30)
        env.done(instance_id)
        got = stub.GetWorkflowAlpha1(workflow_pb2.GetWorkflowRequest(
            instance_id=instance_id, workflow_component="dapr"), timeout=30)
        assert got.runtime_status == "COMPLETED"
        assert got.workflow_name == "wait_event"
        assert got.properties["dapr.workflow.output"] == '"went"'
        unknown = stub.GetWorkflowBeta1(workflow_pb2.GetWorkflowRequest(
            instance_id="never-was", workflow_component="dapr"), timeout=30)
        assert unknown == workflow_pb2.GetWorkflowResponse(instance_id="never-was")
        generated = stub.StartWorkflowBeta1(workflow_pb2.StartWorkflowRequest(
            workflow_component="dapr", workflow_name="task_chain", input=b"1"), timeout=30)
        assert str(uuid.UUID(generated.instance_id)) == generated.instance_id
        env.done(generated.instance_id)


@pytest.fixture
def running_waiter(env: Env) -> Iterator[str]:
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=wid("bad"))
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    yield instance_id
    env.client.terminate_workflow(instance_id)


BAD_INPUT = [
    # (what, http call, grpc call, http status, grpc code, errorCode, message prefix, suffix)
    ("id too long", ("POST", "/v1.0-beta1/workflows/dapr/waiter/start?instanceID=" + "x" * 65),
     ("StartWorkflowBeta1", {"instance_id": "x" * 65, "workflow_name": "waiter"}),
     400, grpc.StatusCode.INVALID_ARGUMENT, "ERR_INSTANCE_ID_TOO_LONG",
     "workflow instance ID exceeds the max length of 64 characters", ""),
    ("bad id", ("POST", "/v1.0-beta1/workflows/dapr/waiter/start?instanceID=a.b"),
     ("StartWorkflowBeta1", {"instance_id": "a.b", "workflow_name": "waiter"}),
     400, grpc.StatusCode.INVALID_ARGUMENT, "ERR_INSTANCE_ID_INVALID",
     "workflow instance ID 'a.b' is invalid: only alphanumeric and underscore", ""),
    ("bad app id", ("POST", "/v1.0-beta1/workflows/dapr/waiter/start?appID=a.b"),
     ("StartWorkflowBeta1", {"workflow_name": "waiter", "app_id": "a.b"}),
     400, grpc.StatusCode.INVALID_ARGUMENT, "ERR_WORKFLOW_APP_ID_INVALID",
     "workflow app ID 'a.b' is invalid", ""),
    ("terminate unknown", ("POST", "/v1.0-beta1/workflows/dapr/nobody/terminate"),
     ("TerminateWorkflowBeta1", {"instance_id": "nobody"}),
     404, grpc.StatusCode.NOT_FOUND, "ERR_INSTANCE_ID_NOT_FOUND",
     "unable to find workflow with the provided instance ID: nobody", ""),
    ("purge unknown", ("POST", "/v1.0-beta1/workflows/dapr/nobody/purge"),
     ("PurgeWorkflowBeta1", {"instance_id": "nobody"}),
     404, grpc.StatusCode.NOT_FOUND, "ERR_INSTANCE_ID_NOT_FOUND",
     "unable to find workflow with the provided instance ID: nobody", ""),
    ("event for unknown", ("POST", "/v1.0-beta1/workflows/dapr/nobody/raiseEvent/e"),
     ("RaiseEventWorkflowBeta1", {"instance_id": "nobody", "event_name": "e"}),
     500, grpc.StatusCode.INTERNAL, "ERR_RAISE_EVENT_WORKFLOW",
     "error raising event on workflow 'nobody': failed to raise event e on workflow nobody:",
     "no such instance exists"),
    ("pause unknown", ("POST", "/v1.0-beta1/workflows/dapr/nobody/pause"),
     ("PauseWorkflowBeta1", {"instance_id": "nobody"}),
     500, grpc.StatusCode.INTERNAL, "ERR_PAUSE_WORKFLOW",
     "error pausing workflow nobody: failed to pause workflow nobody:", ""),
    ("purge running", ("POST", "/v1.0-beta1/workflows/dapr/{running}/purge"),
     ("PurgeWorkflowBeta1", {"instance_id": "{running}"}),
     500, grpc.StatusCode.INTERNAL, "ERR_PURGE_WORKFLOW",
     "error purging workflow {running}: failed to Purge workflow {running}:",
     "orchestration has not yet completed"),
    ("duplicate id", ("POST", "/v1.0-beta1/workflows/dapr/waiter/start?instanceID={running}"),
     ("StartWorkflowBeta1", {"instance_id": "{running}", "workflow_name": "waiter"}),
     500, grpc.StatusCode.INTERNAL, "ERR_START_WORKFLOW",
     "error starting workflow 'waiter': unable to start workflow:",
     "an active workflow with ID '{running}' already exists"),
]


@pytest.mark.parametrize("transport", ["http", "grpc"])
@pytest.mark.parametrize("case", BAD_INPUT, ids=[row[0] for row in BAD_INPUT])
def test_bad_input_answers_daprd_s_error(env: Env, running_waiter: str, transport: str,
                                         case: tuple[Any, ...]) -> None:
    _, http_call, grpc_call, http_status, grpc_status, code, prefix, suffix = case
    prefix = prefix.replace("{running}", running_waiter)
    suffix = suffix.replace("{running}", running_waiter)
    if transport == "http":
        status, body = _http(env, http_call[0], http_call[1].replace("{running}",
                                                                    running_waiter))
        assert status == http_status, body
        assert body["errorCode"] == code
        message = body["message"]
    else:
        method, fields = grpc_call
        fields = {k: v.replace("{running}", running_waiter) for k, v in fields.items()}
        request_type = {"StartWorkflowBeta1": workflow_pb2.StartWorkflowRequest,
                        "TerminateWorkflowBeta1": workflow_pb2.TerminateWorkflowRequest,
                        "PurgeWorkflowBeta1": workflow_pb2.PurgeWorkflowRequest,
                        "PauseWorkflowBeta1": workflow_pb2.PauseWorkflowRequest,
                        "RaiseEventWorkflowBeta1": workflow_pb2.RaiseEventWorkflowRequest,
                        }[method]
        channel, stub = _dapr(env)
        with channel, pytest.raises(grpc.RpcError) as err:
            getattr(stub, method)(request_type(workflow_component="dapr", **fields),
                                  timeout=30)
        assert err.value.code() == grpc_status
        message = err.value.details() or ""
    assert message.startswith(prefix), message
    assert message.endswith(suffix), message


def test_grpc_missing_instance_id_and_event_name(env: Env) -> None:
    channel, stub = _dapr(env)
    with channel:
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetWorkflowBeta1(workflow_pb2.GetWorkflowRequest(workflow_component="dapr"),
                                  timeout=30)
        assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert missing.value.details() == "no instance ID was provided"
        with pytest.raises(grpc.RpcError) as no_event:
            stub.RaiseEventWorkflowBeta1(workflow_pb2.RaiseEventWorkflowRequest(
                instance_id="x", workflow_component="dapr"), timeout=30)
        assert no_event.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert no_event.value.details() == "missing workflow event name"
        with pytest.raises(grpc.RpcError) as no_name:
            stub.StartWorkflowBeta1(workflow_pb2.StartWorkflowRequest(
                workflow_component="dapr"), timeout=30)
        assert no_name.value.details() == "workflow name is not configured"


def test_metadata_reports_the_connected_workers(env: Env) -> None:
    """daprd's ``workflows.connectedWorkers`` (the app's one worker; HTTP and gRPC)."""
    env.done(env.client.schedule_new_workflow("task_chain", input=0))  # the worker is there
    status, body = _http(env, "GET", "/v1.0/metadata")
    assert status == 200
    assert body["workflows"] == {"connectedWorkers": 1}
    channel, stub = _dapr(env)
    with channel:
        got = stub.GetMetadata(metadata_pb2.GetMetadataRequest(), timeout=10)
    assert got.workflows.connected_workers == 1


def test_wait_for_start_payloads_only_when_asked_and_purge_by_filter(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("waiter", input={"a": 1},
                                                   instance_id=wid("start"))
    started = env.client.wait_for_workflow_start(instance_id, timeout_in_seconds=TIMEOUT)
    assert started is not None and started.runtime_status == WorkflowStatus.RUNNING
    with grpc.insecure_channel(env.car.dapr_grpc_address) as channel:
        stub = dt.service_grpc.TaskHubSidecarServiceStub(channel)
        bare = stub.GetInstance(dt.service.GetInstanceRequest(instanceId=instance_id),
                                timeout=10)
        assert bare.exists and bare.workflowState.name == "waiter"
        assert not bare.workflowState.HasField("input")
        full = stub.GetInstance(dt.service.GetInstanceRequest(
            instanceId=instance_id, getInputsAndOutputs=True), timeout=10)
        assert json.loads(full.workflowState.input.value) == {"a": 1}
        assert not stub.GetInstance(dt.service.GetInstanceRequest(instanceId="none-such"),
                                    timeout=10).exists
        request = dt.service.PurgeInstancesRequest()
        request.purgeInstanceFilter.SetInParent()
        with pytest.raises(grpc.RpcError) as err:
            stub.PurgeInstances(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert err.value.details() == "multi-instance purge is not implemented"
    env.client.terminate_workflow(instance_id)


