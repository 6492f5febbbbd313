"""Dapr workflows on one sidecar (docs/workflows.md), with the workflow SDK that ships in the
pinned ``dapr`` (``dapr.ext.workflow``: ``WorkflowRuntime`` in the app, tests/e2e/apps/
wf_app.py, and ``DaprWorkflowClient`` here), unchanged, through ``pylotto run``. The
workflow state is in the actor state store (Redis, marked ``actorStateStore: "true"``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus

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


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("workflows")
    car = Sidecar(workdir, app={"app_id": unique("wf"), "port": free_port()},
                  components={"state": {"actorstore": {
                      "type": "redis", "metadata": {"redisHost": "127.0.0.1:6379",
                                                    "redisPassword": "",
                                                    "actorStateStore": "true"}}}})
    car.start()
    events, app_log = workdir / "events.jsonl", workdir / "app.log"
    settings = {"DAPR_RUNTIME_HOST": "127.0.0.1", "DAPR_GRPC_PORT": str(car.dapr_grpc_port),
                "DAPR_HTTP_PORT": str(car.dapr_http_port)}
    with app_log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(APP), "--events", str(events)], stdout=out,
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


def test_task_chaining(env: Env) -> None:
    instance_id = env.client.schedule_new_workflow("task_chain", input=10,
                                                   instance_id=_wid("chain"))
    state = env.done(instance_id)
    assert state.runtime_status == WorkflowStatus.COMPLETED, env.logs()
    assert json.loads(state.serialized_output) == [11, 22, 20]
    assert state.name == "task_chain"
    assert json.loads(state.serialized_input) == 10
