"""deploy/kubernetes/: every object valid against the Kubernetes schemas (offline, strict), the
configuration they carry accepted by pylotto, and the pieces that must agree (probes, ports,
Services, the webhook and the injector) agreeing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pylotto.cli import main as cli
from pylotto.config import manifest_check
from pylotto.config import model as config
from pylotto.deploy import patch as sidecar_patch
from pylotto.deploy.injector import MUTATE_PATH
from tests.support.kubernetes import assert_valid

MANIFESTS = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"
FILES = sorted(MANIFESTS.glob("*.yaml"))


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def find(name: str, kind: str, object_name: str) -> dict[str, Any]:
    return next(d for d in documents(name)
                if d["kind"] == kind and d["metadata"]["name"] == object_name)


def test_the_files_are_there() -> None:
    assert [f.name for f in FILES] == ["annotated-app.yaml", "app.yaml", "injector.yaml"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_object_is_valid(path: Path) -> None:
    found = documents(path.name)
    assert found
    for document in found:
        assert_valid(document)


def test_an_invalid_object_is_caught() -> None:
    deployment = find("app.yaml", "Deployment", "orders")
    deployment["spec"]["template"]["spec"]["containers"][1]["livenessProbe"]["httpGet"][
        "port"] = [34999]
    with pytest.raises(AssertionError, match="livenessProbe"):
        assert_valid(deployment)


def test_the_resources_configmap_holds_manifests_pylotto_accepts(tmp_path: Path) -> None:
    resources = find("app.yaml", "ConfigMap", "pylotto-resources")
    for file_name, text in resources["data"].items():
        (tmp_path / file_name).write_text(text)
    report = manifest_check.check(tmp_path)
    assert [f.message for f in report.findings] == []
    assert report.counts == {"Component": 3}


def test_the_sidecar_configs_load(tmp_path: Path) -> None:
    own = find("app.yaml", "ConfigMap", "orders-pylotto")["data"]["pylotto.yaml"]
    (tmp_path / "pylotto.yaml").write_text(own)
    cfg = config.load(tmp_path / "pylotto.yaml")
    assert cfg.app.id == "orders" and cfg.listen.actuator == "0.0.0.0:34999"
    assert cfg.name_resolution is not None and cfg.name_resolution.type == "kubernetes"
    assert cfg.mtls is not None
    dapr = find("annotated-app.yaml", "ConfigMap", "appconfig")["data"][
        sidecar_patch.CONFIG_FILE]
    (tmp_path / "config.yaml").write_text(dapr)
    cfg = config.load(tmp_path / "config.yaml")
    assert cfg.name_resolution is not None and cfg.name_resolution.type == "kubernetes"
    assert cfg.name_resolution.metadata == {"clusterDomain": "cluster.local"}


def test_the_hand_written_sidecar() -> None:
    spec = find("app.yaml", "Deployment", "orders")["spec"]["template"]["spec"]
    sidecar = next(c for c in spec["containers"] if c["name"] == sidecar_patch.CONTAINER)
    assert sidecar["livenessProbe"]["httpGet"]["path"] == sidecar_patch.LIVENESS_PATH
    assert sidecar["readinessProbe"]["httpGet"]["path"] == sidecar_patch.READINESS_PATH
    assert sidecar["livenessProbe"]["httpGet"]["port"] == sidecar_patch.ACTUATOR_PORT
    context = cli.commands["run"].make_context("run", list(sidecar["args"][1:]))
    assert context.params["mode"] == "kubernetes"
    mounted = {m["mountPath"] for m in sidecar["volumeMounts"]}
    config_path = Path(context.params["config_path"])
    assert str(config_path.parent) in mounted
    assert context.params["resources_paths"] == ("/etc/pylotto/resources",)
    assert "/etc/pylotto/resources" in mounted
    # the pylotto.yaml's mtls files are in the mounted Secret
    own = yaml.safe_load(find("app.yaml", "ConfigMap", "orders-pylotto")["data"][
        config_path.name])
    assert {str(Path(own["mtls"][k]).parent) for k in ("ca_file", "cert_file", "key_file")} \
        <= mounted


@pytest.mark.parametrize(("name", "app_id"), [("app.yaml", "orders"),
                                              ("annotated-app.yaml", "checkout")])
def test_the_dapr_service_is_the_name_resolution_target(name: str, app_id: str) -> None:
    service = find(name, "Service", f"{app_id}-dapr")
    assert service["spec"]["clusterIP"] == "None"  # one DNS address per pod
    assert service["spec"]["selector"] == {"dapr.io/app-id": app_id}
    ports = {p["port"] for p in service["spec"]["ports"]}
    assert {50001, 50002, sidecar_patch.HTTP_PORT} <= ports


def test_the_webhook_reaches_the_injector() -> None:
    webhook = find("injector.yaml", "MutatingWebhookConfiguration",
                   "pylotto-sidecar-injector")["webhooks"][0]
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["rules"][0]["resources"] == ["pods"]
    target = webhook["clientConfig"]["service"]
    assert target["path"] == MUTATE_PATH
    service = find("injector.yaml", "Service", target["name"])
    assert service["metadata"]["namespace"] == target["namespace"]
    assert [p["port"] for p in service["spec"]["ports"]] == [target["port"]]
    deployment = find("injector.yaml", "Deployment", "pylotto-injector")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    context = cli.commands["injector"].make_context(
        "injector", [a if not a.startswith("/etc/") else __file__ for a in container["args"][1:]])
    port = int(context.params["address"].rpartition(":")[2])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    # the injector's own namespace is never sent to it
    namespace = find("injector.yaml", "Namespace", target["namespace"])
    label = namespace["metadata"]["labels"]["pylotto.io/injection"]
    excluded = webhook["namespaceSelector"]["matchExpressions"][0]
    assert excluded["key"] == "pylotto.io/injection" and label in excluded["values"]
