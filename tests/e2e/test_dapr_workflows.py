"""Dapr workflows on one sidecar (docs/workflows.md), with the workflow SDK that ships in the
pinned ``dapr`` (``dapr.ext.workflow``: ``WorkflowRuntime`` in the app, tests/e2e/apps/
wf_app.py, and ``DaprWorkflowClient`` here), unchanged, through ``pylotto run``. The
workflow state is in the actor state store (Redis, marked ``actorStateStore: "true"``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus
from dapr.proto.runtime.v1 import dapr_pb2_grpc, metadata_pb2, workflow_pb2
from google.protobuf import empty_pb2

from pylotto.proto import durabletask as dt
from tests.e2e.dapr_run import unique
from tests.e2e.sidecar import Sidecar
from tests.support.ports import free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

APP = Path(__file__).parent / "apps" / "wf_app.py"
ROOT = Path(__file__).parents[2]
TIMEOUT = 60


@dataclass
class Env:
    car: Sidecar
    app: subprocess.Popen[bytes]
    events_file: Path
    app_log: Path
    client: DaprWorkflowClient

    def events(self, kind: str) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        rows = [json.loads(line) for line in self.events_file.read_text().splitlines() if line]
        return [row for row in rows if row["event"] == kind]

    def logs(self) -> str:
        app = self.app_log.read_text(errors="replace") if self.app_log.exists() else ""
        return f"--- sidecar\n{self.car.logs()[-6000:]}\n--- app\n{app[-6000:]}"

    def done(self, instance_id: str, timeout: float = TIMEOUT) -> Any:
        state = self.client.wait_for_workflow_completion(instance_id, timeout_in_seconds=timeout)
        assert state is not None, self.logs()
        return state

    def status_becomes(self, instance_id: str, status: WorkflowStatus,
                       timeout: float = TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            state = self.client.get_workflow_state(instance_id)
            if state is not None and state.runtime_status == status:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{instance_id}: not {status} within {timeout}s "
                                     f"({state and state.runtime_status})\n{self.logs()}")
            time.sleep(0.1)


def _wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


REDIS = {"type": "redis", "metadata": {"redisHost": "127.0.0.1:6379", "redisPassword": "",
                                        "actorStateStore": "true"}}


@contextlib.contextmanager
def _running(workdir: Path, token: str = "", store: dict[str, Any] | None = REDIS,
             python: str = sys.executable) -> Iterator[Env]:
    """A sidecar (``store`` the actor state store, Redis by default; None: the embedded
    default components, whose sqlite store is the actor state store) and the workflow app
    connected to it (both with the API token ``token``, when given; the app run by
    ``python``)."""
    car = Sidecar(workdir, app={"app_id": unique("wf"), "port": free_port()},
                  env={"DAPR_API_TOKEN": token} if token else {},
                  components={"state": {"actorstore": store}} if store is not None else None)
    car.start()
    events, app_log = workdir / "events.jsonl", workdir / "app.log"
    settings = {"DAPR_RUNTIME_HOST": "127.0.0.1", "DAPR_GRPC_PORT": str(car.dapr_grpc_port),
                "DAPR_HTTP_PORT": str(car.dapr_http_port)}
    if token:
        settings["DAPR_API_TOKEN"] = token
    with app_log.open("ab") as out:
        process = subprocess.Popen(
            [python, str(APP), "--events", str(events)], stdout=out,
            stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT), **settings})
    old = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    client = DaprWorkflowClient(host="127.0.0.1", port=str(car.dapr_grpc_port))
    try:
        yield Env(car, process, events, app_log, client)
    finally:
        client.close()
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        car.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with _running(tmp_path_factory.mktemp("workflows")) as started:
        yield started


def test_task_chaining(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("task_chain", input=10,
                                                   instance_id=_wid("chain"))
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == [11, 22, 20]
    assert state.name == "task_chain"
    assert json.loads(state.serialized_input) == 10


def test_fan_out_fan_in_over_100_activities(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("batch_processing", input=100,
                                                   instance_id=_wid("fan"))
    state = env.done(instance_id, timeout=120)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == 2 * sum(range(1, 101))
    assert {row["item"] for row in env.events("work_item")} >= set(range(1, 101))
    assert {"event": "results", "total": 10100} in env.events("results")


def test_external_event_in_time_is_approved(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow(
        "purchase_order_wf", input={"cost": 2000, "product": "pc", "timeout": 30},
        instance_id=_wid("approve"))
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
        instance_id=_wid("timeout"))
    started = time.monotonic()
    state = env.done(instance_id)
    assert json.loads(state.serialized_output) == "Cancelled"
    assert time.monotonic() - started >= 1.0


def test_external_event_raised_before_the_wait_is_buffered(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("wait_event", input=2.0,
                                                   instance_id=_wid("early"))
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    env.client.raise_workflow_event(instance_id, "go", data={"early": True})
    state = env.done(instance_id)
    assert json.loads(state.serialized_output) == {"early": True}


def test_an_instance_id_with_a_non_ascii_letter_and_its_timer(env: Env) -> None:
    """``é`` is a letter for daprd's id check, not for the scheduler's job names: the timer
    (3 s: still ahead when the turn's effects run) is kept in memory, logged, and fires."""
    instance_id = env.client.schedule_new_workflow("wait_event", input=3.0,
                                                   instance_id=_wid("café"))
    env.client.raise_workflow_event(instance_id, "go", data="late enough")
    state = env.done(instance_id)
    assert json.loads(state.serialized_output) == "late enough"
    assert f"workflows: {instance_id}: timer 1 kept in memory only" in env.car.logs(), \
        env.logs()  # the SDK numbers the workflow's actions from 1


def test_monitor_continues_as_new(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow(
        "status_monitor", input={"checks": 0, "limit": 4, "last": ""},
        instance_id=_wid("monitor"))
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
    parent = _wid("parent")
    state = env.done(env.client.schedule_new_workflow("main_workflow", input=False,
                                                      instance_id=parent))
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == f"child said hello from {parent}-child"
    child = env.client.get_workflow_state(parent + "-child")
    assert child is not None and child.runtime_status == WorkflowStatus.COMPLETED


def test_failing_child_raises_task_failed_in_the_parent(env: Env) -> None:
    parent = _wid("parent")
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
                                                   instance_id=_wid("retry"))
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == 3
    attempts = [r["attempt"] for r in env.events("flaky") if r["id"] == instance_id]
    assert attempts == [1, 2, 3]


def test_terminate(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=_wid("term"))
    env.status_becomes(instance_id, WorkflowStatus.RUNNING)
    env.client.terminate_workflow(instance_id, output="bye")
    state = env.status_becomes(instance_id, WorkflowStatus.TERMINATED)
    assert json.loads(state.serialized_output) == "bye"


def test_recursive_terminate_reaches_the_child(env: Env) -> None:
    parent = env.client.schedule_new_workflow("parent_of_waiter", instance_id=_wid("rec"))
    child = parent + "-w"
    env.status_becomes(child, WorkflowStatus.RUNNING)
    env.client.terminate_workflow(parent)  # recursive by default
    env.status_becomes(parent, WorkflowStatus.TERMINATED)
    env.status_becomes(child, WorkflowStatus.TERMINATED)


def test_suspend_resume_and_an_event_sent_while_suspended(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=_wid("pause"))
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
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=_wid("purge"))
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
                                                   instance_id=_wid("unknown"))
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.FAILED
    assert state.failure_details is not None
    assert "no_such_workflow" in state.failure_details.message


def test_duplicate_instance_id_of_an_active_workflow(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=_wid("dup"))
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


def _committed_items(env: Env, instance_id: str) -> set[int]:
    """The items whose activity result is committed in the instance's history (read with
    GetInstanceHistory: a TaskCompleted names the TaskScheduled whose input is the item)."""
    with grpc.insecure_channel(env.car.dapr_grpc_address) as channel:
        stub = dt.service_grpc.TaskHubSidecarServiceStub(channel)
        events = stub.GetInstanceHistory(
            dt.service.GetInstanceHistoryRequest(instanceId=instance_id), timeout=10).events
    items = {e.eventId: json.loads(e.taskScheduled.input.value)["item"] for e in events
             if e.HasField("taskScheduled")}
    return {items[e.taskCompleted.taskScheduledId] for e in events
            if e.HasField("taskCompleted")}


def test_sidecar_killed_in_a_fan_out_resumes_after_a_restart(tmp_path: Path) -> None:
    """SIGKILL the sidecar once 30 of 100 activity results are committed; after a restart
    the workflow completes with the right sum, every activity ran, and no activity whose
    result was committed before the kill ran again (the others ran at least once: the app
    finishes the ones it had, their results die with the sidecar, and they run again)."""
    with _running(tmp_path) as crash:
        instance_id = crash.client.schedule_new_workflow("slow_batch", input=100,
                                                         instance_id=_wid("crash"))
        deadline = time.monotonic() + TIMEOUT
        committed: set[int] = set()
        while len(committed) < 30:
            assert time.monotonic() < deadline, crash.logs()
            time.sleep(0.05)
            committed = _committed_items(crash, instance_id)
        crash.car.stop(signal.SIGKILL)
        crash.car.start()
        state = crash.done(instance_id, timeout=120)
        assert state.runtime_status == WorkflowStatus.COMPLETED, crash.logs()
        assert json.loads(state.serialized_output) == sum(range(1, 101))
        runs: dict[int, int] = {}
        for row in crash.events("slow_item"):
            if row["id"] == instance_id:
                runs[row["item"]] = runs.get(row["item"], 0) + 1
        assert set(runs) == set(range(1, 101))
        assert {item: runs[item] for item in committed} == dict.fromkeys(committed, 1)
        again = sum(1 for count in runs.values() if count > 1)
        print(f"crash: {len(committed)} results committed before the kill (each ran once), "
              f"{again} activities ran twice")


def test_without_an_actor_state_store_the_workflow_rpcs_answer_daprd_s_error(
        tmp_path: Path) -> None:
    car = Sidecar(tmp_path, app={"app_id": unique("wfnostore"), "port": free_port()},
                  components={"state": {"plain": {"type": "in-memory", "metadata": {}}}})
    car.start()
    try:
        with grpc.insecure_channel(car.dapr_grpc_address) as channel:
            stub = dt.service_grpc.TaskHubSidecarServiceStub(channel)
            stub.Hello(empty_pb2.Empty(), timeout=10)
            with pytest.raises(grpc.RpcError) as err:
                stub.StartInstance(dt.service.CreateInstanceRequest(name="w"), timeout=10)
            assert err.value.code() == grpc.StatusCode.INTERNAL
            assert (err.value.details() or "").startswith(
                "the state store is not configured to use the actor runtime")
            with pytest.raises(grpc.RpcError) as get:
                stub.GetInstance(dt.service.GetInstanceRequest(instanceId="x"), timeout=10)
            assert get.value.code() == grpc.StatusCode.INTERNAL
            # a worker may connect; its stream idles (nothing to do), as with daprd
            stream = stub.GetWorkItems(dt.service.GetWorkItemsRequest(), timeout=1)
            with pytest.raises(grpc.RpcError) as idle:
                next(iter(stream))
            assert idle.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        car.stop()


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
    instance_id = _wid("http")
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
        instance_id = _wid("grpc")
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
    instance_id = env.client.schedule_new_workflow("waiter", instance_id=_wid("bad"))
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


def test_the_api_token_covers_the_durable_task_service(tmp_path: Path) -> None:
    """With ``DAPR_API_TOKEN`` set, a call without it is UNAUTHENTICATED; the SDK (app and
    client) sends it and runs a workflow."""
    with _running(tmp_path, token="wf-s3cret") as guarded:
        with grpc.insecure_channel(guarded.car.dapr_grpc_address) as channel:
            stub = dt.service_grpc.TaskHubSidecarServiceStub(channel)
            for call in (lambda: stub.Hello(empty_pb2.Empty(), timeout=10),
                         lambda: stub.StartInstance(
                             dt.service.CreateInstanceRequest(name="task_chain"), timeout=10),
                         lambda: next(iter(stub.GetWorkItems(
                             dt.service.GetWorkItemsRequest(), timeout=10)))):
                with pytest.raises(grpc.RpcError) as refused:
                    call()
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        state = guarded.done(guarded.client.schedule_new_workflow("task_chain", input=1))
        assert json.loads(state.serialized_output) == [2, 4, 6]


def test_the_app_killed_in_a_fan_out_its_items_go_to_the_next_worker(tmp_path: Path) -> None:
    """SIGKILL the app (the only worker) once 20 of 100 results are committed; the items it
    held are sent again to the next app started, and the workflow completes."""
    with _running(tmp_path) as crash:
        instance_id = crash.client.schedule_new_workflow("slow_batch", input=100,
                                                         instance_id=_wid("appkill"))
        deadline = time.monotonic() + TIMEOUT
        while len(_committed_items(crash, instance_id)) < 20:
            assert time.monotonic() < deadline, crash.logs()
            time.sleep(0.05)
        crash.app.kill()
        crash.app.wait()
        with crash.app_log.open("ab") as out:
            crash.app = subprocess.Popen(
                [sys.executable, str(APP), "--events", str(crash.events_file)], stdout=out,
                stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)})
        state = crash.done(instance_id, timeout=120)
        assert state.runtime_status == WorkflowStatus.COMPLETED, crash.logs()
        assert json.loads(state.serialized_output) == sum(range(1, 101))
        assert re.search(r"a worker disconnected \(0 left; [1-9]\d* items sent again\)",
                         crash.car.logs()), crash.logs()


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
                                                   instance_id=_wid("start"))
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


def test_on_the_embedded_default_chain_fan_out_timer_and_a_restart(tmp_path: Path) -> None:
    """The embedded default components, no store configured (its sqlite store is the actor
    state store): a chain, a 20-activity fan-out, a timer-guarded event, and the state kept
    over a sidecar restart (a finished instance is still there)."""
    with _running(tmp_path, store=None) as lite:
        chain = lite.client.schedule_new_workflow("task_chain", input=3)
        assert json.loads(lite.done(chain).serialized_output) == [4, 8, 10]
        fan = lite.client.schedule_new_workflow("batch_processing", input=20)
        assert json.loads(lite.done(fan).serialized_output) == 2 * sum(range(1, 21))
        late = lite.client.schedule_new_workflow(
            "purchase_order_wf", input={"cost": 5000, "product": "lite", "timeout": 1})
        assert json.loads(lite.done(late).serialized_output) == "Cancelled"
        lite.car.restart()
        state = lite.client.get_workflow_state(chain)
        assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED
        again = lite.client.schedule_new_workflow("task_chain", input=4)
        assert json.loads(lite.done(again).serialized_output) == [5, 10, 8]


@contextlib.contextmanager
def _pair(tmp_path: Path) -> Iterator[tuple[list[Sidecar], list[subprocess.Popen[bytes]],
                                            list[DaprWorkflowClient], Path]]:
    """Two sidecars of one app id (Redis, placement by leases), each with its own app."""
    app_id = unique("wf2")
    events = tmp_path / "events.jsonl"
    cars: list[Sidecar] = []
    apps: list[subprocess.Popen[bytes]] = []
    clients: list[DaprWorkflowClient] = []
    try:
        for name in ("a", "b"):
            car = Sidecar(tmp_path / name, app={"app_id": app_id, "port": free_port()},
                          components={"state": {"actorstore": REDIS}},
                          extra_config={"actors": {"lease_seconds": 2.0,
                                                   "poll_seconds": 0.2}})
            car.start()
            cars.append(car)
            with (tmp_path / f"{name}.log").open("ab") as out:
                apps.append(subprocess.Popen(
                    [sys.executable, str(APP), "--events", str(events)], stdout=out,
                    stderr=subprocess.STDOUT, cwd=ROOT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT),
                         "DAPR_RUNTIME_HOST": "127.0.0.1",
                         "DAPR_GRPC_PORT": str(car.dapr_grpc_port)}))
            clients.append(DaprWorkflowClient(host="127.0.0.1", port=str(car.dapr_grpc_port)))
        yield cars, apps, clients, events
    finally:
        for client in clients:
            client.close()
        for app in apps:
            app.kill()
            app.wait(10)
        for car in cars:
            car.stop()


def test_two_sidecars_of_one_app_id_complete_each_workflow_once(tmp_path: Path) -> None:
    """50 workflows started through both sidecars complete once each (one
    ExecutionCompleted in each history), and the instances ran on both apps."""
    with _pair(tmp_path) as (cars, apps, clients, events):
        ids = [clients[i % 2].schedule_new_workflow("spread", instance_id=_wid(f"two{i}"))
               for i in range(50)]
        for i, instance_id in enumerate(ids):
            state = clients[(i + 1) % 2].wait_for_workflow_completion(
                instance_id, timeout_in_seconds=120)
            assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, \
                "\n".join(c.logs()[-3000:] for c in cars)
            kinds = [e.event_type.name for e in clients[i % 2].get_workflow_history(instance_id)]
            assert kinds.count("EXECUTION_COMPLETED") == 1, kinds
        rows = [json.loads(line) for line in events.read_text().splitlines() if line]
        pids = {row["pid"] for row in rows if row["event"] == "where" and row["id"] in ids}
        assert pids == {app.pid for app in apps}, pids


def test_one_of_two_sidecars_killed_its_instances_finish_on_the_other(tmp_path: Path) -> None:
    """10 fan-outs of 10 slow activities over both sidecars; sidecar b and its app are
    SIGKILLed mid-way: every workflow completes with the right sum through a (its placement
    takes b's instances once b's leases lapse, and resumes them)."""
    with _pair(tmp_path) as (cars, apps, clients, events):
        ids = [clients[i % 2].schedule_new_workflow("slow_batch", input=10,
                                                    instance_id=_wid(f"fail{i}"))
               for i in range(10)]
        deadline = time.monotonic() + TIMEOUT
        while sum(1 for line in (events.read_text().splitlines() if events.exists() else [])
                  if '"slow_item"' in line) < 20:
            assert time.monotonic() < deadline, "\n".join(c.logs()[-3000:] for c in cars)
            time.sleep(0.05)
        apps[1].kill()
        cars[1].stop(signal.SIGKILL)
        for instance_id in ids:
            state = clients[0].wait_for_workflow_completion(instance_id,
                                                            timeout_in_seconds=120)
            assert state is not None and state.runtime_status == WorkflowStatus.COMPLETED, \
                cars[0].logs()[-6000:]
            assert json.loads(state.serialized_output) == sum(range(1, 11))
        # b owned some: a's sweep resumed them (at start a had none to resume)
        assert re.search(r"workflows: [1-9]\d* instance\(s\) resumed", cars[0].logs())


SDK_18 = ["dapr==1.18.3", "dapr-ext-workflow==1.18.3"]
"""The other client of docs/design/workflows.md §0: the newest ``dapr-ext-workflow`` on PyPI,
over ``dapr`` 1.18 (older stubs, no worker capabilities sent)."""


@pytest.fixture(scope="module")
def python_18(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv with the 1.18 SDK, built with pip (a failure fails the tests, never skips)."""
    venv = tmp_path_factory.mktemp("sdk18") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", *SDK_18], check=True,
                   timeout=600)
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('dapr-ext-workflow'))"],
        check=True, capture_output=True, text=True).stdout.strip()
    assert version == "1.18.3"
    return python


def test_the_1_18_sdk_as_the_app(tmp_path: Path, python_18: str) -> None:
    """The same app on ``dapr-ext-workflow`` 1.18.3: chaining, fan-out over 100, an event in
    time, continue-as-new, a child and a failing child, retries, suspend/resume/terminate."""
    with _running(tmp_path, python=python_18) as old:
        c = old.client
        assert json.loads(old.done(c.schedule_new_workflow("task_chain", input=10))
                          .serialized_output) == [11, 22, 20]
        assert json.loads(old.done(c.schedule_new_workflow("batch_processing", input=100),
                                   timeout=120).serialized_output) == 10100
        order = c.schedule_new_workflow("purchase_order_wf",
                                        input={"cost": 2000, "product": "old", "timeout": 30})
        deadline = time.monotonic() + TIMEOUT
        while not [r for r in old.events("approval_requested") if r["product"] == "old"]:
            assert time.monotonic() < deadline, old.logs()
            time.sleep(0.1)
        c.raise_workflow_event(order, "approval_received", data={"approver": "Old"})
        assert json.loads(old.done(order).serialized_output) == "Approved by 'Old'"
        monitor = c.schedule_new_workflow("status_monitor",
                                          input={"checks": 0, "limit": 3, "last": ""})
        assert json.loads(old.done(monitor).serialized_output)["checks"] == 3
        parent = _wid("old")
        assert json.loads(old.done(c.schedule_new_workflow(
            "main_workflow", input=False, instance_id=parent)).serialized_output) == \
            f"child said hello from {parent}-child"
        failing = c.schedule_new_workflow("main_workflow", input=True)
        assert json.loads(old.done(failing).serialized_output).startswith("child failed:")
        retry = c.schedule_new_workflow("retrying", input=2, instance_id=_wid("oldretry"))
        assert json.loads(old.done(retry).serialized_output) == 3
        waiting = c.schedule_new_workflow("waiter")
        old.status_becomes(waiting, WorkflowStatus.RUNNING)
        c.pause_workflow(waiting)
        old.status_becomes(waiting, WorkflowStatus.SUSPENDED)
        c.resume_workflow(waiting)
        old.status_becomes(waiting, WorkflowStatus.RUNNING)
        c.terminate_workflow(waiting)
        old.status_becomes(waiting, WorkflowStatus.TERMINATED)
