"""The real Layotto Node.js SDK (npm ``layotto`` 1.18.0, pinned in package-lock.json) driven
through every client API it has (run.js) against ``pylotto run`` with a Layotto JSON config on
Redis and etcd, on free ports; the SDK's own ``Server`` is the AppCallback app."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import free_port

HERE = Path(__file__).parent
CHECKS = [
    "hello", 'state: save with the default etag "0", get, versions from 1', "state: an empty value",
    "state: a missing key", "state: a wrong etag is refused",
    "state: bulk save, getBulk, delete, deleteBulk", "state: transaction upsert then delete",
    "configuration: save, get, delete", "configuration: subscribe, then end() ends the stream",
    "lock: tryLock, a second owner refused, unLock", "sequencer: getNextId increases",
    "pubsub: publish, delivered to the SDK Server", "binding: invoke the http binding",
]


def layotto_config(port: int, app_port: int, http_port: int) -> dict[str, Any]:
    redis = {"type": "redis", "metadata": {"redisHost": "localhost:6379", "redisPassword": ""}}
    grpc_config = {
        "hellos": {"helloworld": {"type": "helloworld", "hello": "greeting"}},
        "state": {"state_demo": redis},
        "config_store": {"config_demo": {"type": "etcd", "address": ["127.0.0.1:2379"],
                                         "timeout": "10"}},
        "sequencer": {"sequencer_demo": redis},
        "lock": {"lock_demo": redis},
        "bindings": {"http": {"type": "http",
                              "metadata": {"url": f"http://127.0.0.1:{http_port}"}}},
        "pub_subs": {"pub_subs_demo": redis},
        "app": {"app_id": "app1", "grpc_callback_port": app_port},
    }
    listener = {"name": "grpc", "address": f"127.0.0.1:{port}", "bind_port": True,
                "filter_chains": [{"filters": [{"type": "grpc", "config": {
                    "server_name": "runtime", "grpc_config": grpc_config}}]}]}
    return {"servers": [{"default_log_path": "stdout", "listeners": [listener]}]}


@pytest.fixture(scope="module")
def node_modules() -> None:
    npm = shutil.which("npm")
    assert npm is not None, "npm is needed for the Layotto Node SDK test"
    if not (HERE / "node_modules" / "layotto").is_dir():
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=HERE,
                       check=True, capture_output=True, timeout=300)


def test_layotto_node_sdk(node_modules: None, tmp_path: Path) -> None:
    port, app_port, http_port = free_port(), free_port(), free_port()
    config = tmp_path / "config.json"
    config.write_text(json.dumps(layotto_config(port, app_port, http_port)))
    pylotto = Path(__import__("sys").executable).with_name("pylotto")
    node = subprocess.Popen(["node", "run.js", str(port), str(app_port), str(http_port)],
                            cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1)  # the SDK's Server listens before the sidecar asks it for subscriptions
    with (tmp_path / "pylotto.log").open("wb") as log:
        sidecar = subprocess.Popen(
            [str(pylotto), "run", "-c", str(config), "--dapr-grpc-port", "0",
             "--dapr-http-port", "0", "--actuator-address", f"127.0.0.1:{free_port()}"],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            out, _ = node.communicate(timeout=120)  # also: the Node process exits by itself
        finally:
            node.kill()
            sidecar.terminate()
            sidecar.wait(10)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    failed = {line["check"]: line["error"] for line in lines if not line.get("ok", True)}
    assert failed == {}, (out.decode(), (tmp_path / "pylotto.log").read_text())
    assert [line["check"] for line in lines if "check" in line] == CHECKS
    assert lines[-1] == {"done": True}
