"""What the workflow e2e tests share: a sidecar with the workflow app of
tests/e2e/apps/wf_app.py connected to it (the SDK in the pinned ``dapr``), and ways to read
what it did."""

from __future__ import annotations

import contextlib
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
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus

from pylotto.proto import durabletask as dt
from tests.e2e.dapr_run import unique
from tests.e2e.sidecar import Sidecar
from tests.support.ports import free_port

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


def wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


REDIS = {"type": "redis", "metadata": {"redisHost": "127.0.0.1:6379", "redisPassword": "",
                                        "actorStateStore": "true"}}


@contextlib.contextmanager
def running(workdir: Path, token: str = "", store: dict[str, Any] | None = REDIS,
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


def committed_items(env: Env, instance_id: str) -> set[int]:
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

