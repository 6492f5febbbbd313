"""``pylotto check-config`` on Dapr manifests (issue 16, item 13): a resources folder or one
manifest file — components, subscriptions, resiliency, Configuration — besides pylotto and
Layotto configs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylotto", "check-config", str(path)],
                          capture_output=True, text=True, timeout=60)


def manifest(kind: str, name: str, spec: dict[str, Any],
             version: str = "dapr.io/v1alpha1") -> dict[str, Any]:
    return {"apiVersion": version, "kind": kind, "metadata": {"name": name}, "spec": spec}


COMPONENT = manifest("Component", "statestore", {
    "type": "state.redis", "version": "v1",
    "metadata": [{"name": "redisHost", "value": "localhost:6379"}]})
SUBSCRIPTION = manifest("Subscription", "orders", {
    "topic": "orders", "pubsubname": "pubsub", "routes": {"default": "/orders"}},
    version="dapr.io/v2alpha1")
RESILIENCY = manifest("Resiliency", "policies", {
    "policies": {"retries": {"three": {"policy": "constant", "duration": "1s",
                                       "maxRetries": 3}}},
    "targets": {"components": {"statestore": {"outbound": {"retry": "three"}}}}})
CONFIGURATION = manifest("Configuration", "appconfig", {
    "tracing": {"samplingRate": "1", "zipkin": {"endpointAddress": "http://localhost:9411"}},
    "accessControl": {"defaultAction": "allow"},
    "secrets": {"scopes": [{"storeName": "local", "defaultAccess": "deny"}]}})


def write(folder: Path, name: str, *documents: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_a_good_resources_folder(tmp_path: Path) -> None:
    folder = tmp_path / "resources"
    write(folder, "statestore.yaml", COMPONENT)
    write(folder, "subscription.yaml", SUBSCRIPTION)
    write(folder, "resiliency.yaml", RESILIENCY)
    write(folder, "config.yaml", CONFIGURATION)
    result = check(folder)
    assert result.returncode == 0, result.stderr
    assert "ok — 1 Component, 1 Configuration, 1 Resiliency, 1 Subscription" in result.stdout


def test_one_manifest_file_with_several_documents(tmp_path: Path) -> None:
    path = write(tmp_path, "all.yaml", COMPONENT, SUBSCRIPTION)
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert "1 Component, 1 Subscription" in result.stdout


def test_every_problem_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "resources"
    write(folder, "a.yaml", manifest("Component", "weird", {"type": "state.nosuch",
                                                            "version": "v1"}))
    write(folder, "b.yaml", manifest("Component", "redis", {
        "type": "state.redis", "version": "v1",
        "metadata": [{"name": "redisHost", "value": "h:1"},
                     {"name": "enableTLS", "value": "perhaps"},
                     {"name": "noSuchKey", "value": "1"}]}))
    write(folder, "c.yaml", manifest("Configuration", "conf", {"tracing": {}, "nonsense": 1}))
    write(folder, "d.yaml", manifest("Resiliency", "r", {"policies": {"retries": {
        "bad": {"policy": "sometimes"}}}}))
    write(folder, "e.yaml", {"apiVersion": "dapr.io/v9", "kind": "Component",
                             "metadata": {"name": "v9"},
                             "spec": {"type": "state.in-memory", "version": "v1"}})
    write(folder, "f.yaml", manifest("Gadget", "g", {}))
    result = check(folder)
    assert result.returncode == 1
    errors = result.stderr
    assert "state.nosuch" in errors
    assert "enableTLS" in errors
    assert "warning: " in errors and "noSuchKey" in errors  # ignored, as at run time
    assert "spec.nonsense is not a key of a Dapr Configuration" in errors
    assert "resiliency spec." in errors
    assert "apiVersion 'dapr.io/v9' is not dapr.io/v1alpha1" in errors
    assert "kind 'Gadget' is not a Dapr resource" in errors
    assert "refused — 6 error(s)" in result.stdout


def test_what_pylotto_does_not_apply_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yaml", manifest("Configuration", "conf", {
        "httpPipeline": {"handlers": [{"name": "oauth", "type": "middleware.http.oauth2"}]}}))
    result = check(path)
    assert result.returncode == 3, result.stderr
    assert "spec.httpPipeline is read but not applied" in result.stderr


def test_pylotto_configs_are_still_checked_as_before(tmp_path: Path) -> None:
    path = tmp_path / "pylotto.yaml"
    path.write_text(yaml.safe_dump({"components": {"state": {"s": {"type": "in-memory"}}}}))
    result = check(path)
    assert result.returncode == 0, result.stderr
    assert "1 components" in result.stdout
