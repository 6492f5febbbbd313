"""``pylotto injector`` as a real process answering an AdmissionReview over HTTPS, and the
sidecar it injects started as the pod would start it (its mounts made folders, its ports free
ones): both actuator probes answer."""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from tests.support.kubernetes import assert_valid, pod_of, write_tls_pair
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
STARTUP_SECONDS = 30.0


def _get(url: str, context: ssl.SSLContext | None = None) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait(url: str, context: ssl.SSLContext | None, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, "the process exited"
        try:
            if _get(url, context) == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {STARTUP_SECONDS}s")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def injector(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    cert, key = write_tls_pair(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pylotto", "injector", "--cert", str(cert), "--key", str(key),
         "--address", f"127.0.0.1:{port}", "--sidecar-image", "pylotto:e2e"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        _wait(f"https://127.0.0.1:{port}/healthz", trust, process)
        yield f"https://127.0.0.1:{port}/mutate", trust
    finally:
        assert _stop(process) == 0


def _review(url: str, context: ssl.SSLContext, pod: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                       "request": {"uid": "e2e-1", "operation": "CREATE",
                                   "namespace": "shop", "object": pod,
                                   "kind": {"group": "", "version": "v1", "kind": "Pod"}}})
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        answer: dict[str, Any] = json.loads(response.read())["response"]
    assert answer["uid"] == "e2e-1" and answer["allowed"] is True
    return answer


def _as_folders(sidecar: dict[str, Any], root: Path, files: dict[str, dict[str, str]],
                ) -> dict[str, str]:
    """Each mount path of ``sidecar`` → a folder under ``root`` holding the files its
    ConfigMap would (``files``: mount path → file name → text)."""
    folders = {}
    for index, mount in enumerate(sidecar["volumeMounts"]):
        folder = root / f"mount{index}"
        folder.mkdir()
        for name, text in files.get(mount["mountPath"], {}).items():
            (folder / name).write_text(text)
        folders[mount["mountPath"]] = str(folder)
    return folders


def _local_args(args: list[str], folders: dict[str, str]) -> list[str]:
    """The container's arguments with its paths the local folders and its ports free ones
    (the Layotto API's too, which the container leaves at its default)."""
    ports = {"--dapr-http-port": str(free_port()), "--dapr-grpc-port": str(free_port()),
             "--actuator-address": f"127.0.0.1:{free_port()}"}
    out: list[str] = []
    for index, arg in enumerate(args):
        previous = args[index - 1] if index else ""
        if previous in ports:
            out.append(ports[previous])
            continue
        for path, folder in folders.items():
            if arg == path or arg.startswith(path + "/"):
                arg = folder + arg[len(path):]
        out.append(arg)
    return [*out, "--grpc-address", f"127.0.0.1:{free_port()}"]


def _inject(url: str, trust: ssl.SSLContext, pod: dict[str, Any]) -> dict[str, Any]:
    """The pylotto container of ``pod`` once the injector's patch is applied."""
    answer = _review(url, trust, pod)
    injected = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(answer["patch"])))
    assert_valid(injected)
    sidecar: dict[str, Any] = next(c for c in injected["spec"]["containers"]
                                   if c["name"] == "pylotto")
    assert sidecar["image"] == "pylotto:e2e"
    return sidecar


def _run_until_ready(sidecar: dict[str, Any], tmp_path: Path,
                     files: dict[str, dict[str, str]]) -> list[str]:
    """Start the container's command here (its mounts holding ``files``) until both probes
    answer 200; stops it and returns its log lines."""
    args = _local_args(sidecar["args"], _as_folders(sidecar, tmp_path, files))
    env = {**os.environ, "NAMESPACE": "shop", "POD_NAME": "pod-0",
           "DAPR_HOST_IP": "127.0.0.1"}
    env.update({e["name"]: e["value"] for e in sidecar["env"] if "value" in e})
    log = tmp_path / "sidecar.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "pylotto", *args], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    actuator = args[args.index("--actuator-address") + 1]
    try:
        readiness = sidecar["readinessProbe"]["httpGet"]["path"]
        liveness = sidecar["livenessProbe"]["httpGet"]["path"]
        try:
            _wait(f"http://{actuator}{readiness}", None, process)
        except AssertionError:
            raise AssertionError(log.read_text()) from None
        assert _get(f"http://{actuator}{liveness}") == 200
    finally:
        assert _stop(process) == 0, log.read_text()
    return log.read_text().splitlines()


def test_dapr_annotated_pod_starts_a_ready_sidecar(injector: tuple[str, ssl.SSLContext],
                                                   tmp_path: Path) -> None:
    url, trust = injector
    docs = list(yaml.safe_load_all((MANIFESTS / "annotated-app.yaml").read_text()))
    pod = pod_of(next(d for d in docs if d["kind"] == "Deployment"), namespace="shop")
    sidecar = _inject(url, trust, pod)
    appconfig = next(d for d in docs if d["kind"] == "ConfigMap")
    component = yaml.safe_dump({"apiVersion": "dapr.io/v1alpha1", "kind": "Component",
                                "metadata": {"name": "statestore"},
                                "spec": {"type": "state.in-memory", "version": "v1"}})
    lines = _run_until_ready(sidecar, tmp_path, {
        "/etc/pylotto/config": dict(appconfig["data"]),
        "/etc/pylotto/resources": {"statestore.yaml": component}})
    ready = next(line for line in lines if "pylotto ready" in line)
    assert "1 components" in ready  # the manifest of the resources ConfigMap


LAYOTTO_CONFIG = {"servers": [{"default_log_path": "stdout", "listeners": [{
    "name": "grpc", "address": "0.0.0.0:34904", "bind_port": True,
    "filter_chains": [{"filters": [{"type": "grpc", "config": {
        "server_name": "runtime", "grpc_config": {
            "hellos": {"quick_start_demo": {"type": "helloworld", "hello": "greeting"}},
            "state": {"state_demo": {"type": "in-memory", "metadata": {}}},
            "app": {"app_id": "app1", "grpc_callback_port": 9999}}}}]}]}]}]}
"""A Layotto config as Layotto's Kubernetes examples ship one in a ConfigMap (gRPC on
0.0.0.0:34904: the test's --grpc-address moves it to a free port)."""


def test_layotto_annotated_pod_starts_a_ready_sidecar(injector: tuple[str, ssl.SSLContext],
                                                      tmp_path: Path) -> None:
    url, trust = injector
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "counter-0", "namespace": "shop",
        "annotations": {"layotto/sidecar-inject": "true",
                        "layotto/config-volume": "layotto-config-vol"}},
        "spec": {"containers": [{"name": "app", "image": "counter:1"}],
                 "volumes": [{"name": "layotto-config-vol",
                              "configMap": {"name": "layotto-runtime-config"}}]}}
    sidecar = _inject(url, trust, pod)
    lines = _run_until_ready(sidecar, tmp_path, {
        "/runtime/configs": {"config.json": json.dumps(LAYOTTO_CONFIG)}})
    ready = next(line for line in lines if "pylotto ready" in line)
    assert "layotto gRPC 127.0.0.1:" in ready and "2 components" in ready
