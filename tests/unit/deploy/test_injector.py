"""The sidecar injector driven as the API server drives it: AdmissionReview v1 requests POSTed
over HTTPS, the JSON patches it answers applied to the pods, the pods then checked against the
Kubernetes schemas."""

from __future__ import annotations

import base64
import copy
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiohttp
import jsonpatch
import pytest
import yaml

from pylotto.cli import main as cli
from pylotto.deploy import patch as sidecar_patch
from pylotto.deploy.injector import InjectorOptions, start
from tests.support.kubernetes import assert_valid, pod_of, write_tls_pair
from tests.support.ports import free_port

MANIFESTS = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes"


class Webhook:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def post(self, body: bytes, content_type: str = "application/json",
                   ) -> tuple[int, Any]:
        async with self.session.post(self.url, data=body,
                                     headers={"Content-Type": content_type}) as response:
            text = await response.text()
            if response.content_type == "application/json":
                return response.status, json.loads(text)
            return response.status, text

    async def review(self, pod: dict[str, Any], *, namespace: str = "default",
                     kind: str = "Pod", operation: str = "CREATE") -> dict[str, Any]:
        uid = str(uuid.uuid4())
        group, version = ("apps", "v1") if kind == "Deployment" else ("", "v1")
        request = {
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": uid, "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version,
                             "resource": kind.lower() + "s"},
                "namespace": namespace, "operation": operation,
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-"
                                         "controller"},
                "object": pod, "oldObject": None, "dryRun": False,
            }}
        status, answer = await self.post(json.dumps(request).encode())
        assert status == 200, answer
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        assert answer["response"]["uid"] == uid
        return dict(answer["response"])


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    cert, key = write_tls_pair(tmp_path)
    port = free_port()
    options = InjectorOptions(sidecar_image="pylotto:test",
                              excluded_namespaces=frozenset({"kube-system"}))
    runner = await start(options, "127.0.0.1", port, cert, key)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as session:
            yield Webhook(f"https://127.0.0.1:{port}/mutate", session)
    finally:
        await runner.cleanup()


def annotated_deployment() -> dict[str, Any]:
    docs = list(yaml.safe_load_all((MANIFESTS / "annotated-app.yaml").read_text()))
    return copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))


def plain_pod(annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default", "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "web:1"}], **spec}}


def patched(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(pod, ops)
    assert_valid(result)
    return result


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["spec"]["containers"]}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def flags(args: list[str]) -> dict[str, str]:
    """``--flag value`` pairs (a flag followed by another flag: ``""``)."""
    found: dict[str, str] = {}
    for index, arg in enumerate(args):
        if arg.startswith("--"):
            following = args[index + 1] if index + 1 < len(args) else "--"
            found[arg] = "" if following.startswith("--") else following
    return found


async def test_dapr_annotated_pod_gets_the_sidecar(webhook: Webhook) -> None:
    pod = pod_of(annotated_deployment(), namespace="shop")
    response = await webhook.review(pod, namespace="shop")
    injected = patched(pod, response)
    assert "warnings" not in response
    sidecar = containers(injected)["pylotto"]
    assert sidecar["image"] == "pylotto:test"
    assert sidecar["command"] == ["pylotto"]
    args = flags(sidecar["args"])
    assert sidecar["args"][0] == "run"
    assert args["--mode"] == "kubernetes"
    assert args["--app-id"] == "checkout" and args["--app-port"] == "8000"
    assert args["--app-protocol"] == "http" and args["--log-level"] == "info"
    assert args["--config"] == "/etc/pylotto/config/config.yaml"
    assert args["--resources-path"] == "/etc/pylotto/resources"
    assert args["--actuator-address"] == "0.0.0.0:34999"
    assert "--enable-api-logging" not in args  # "false" in the annotation
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/actuator/health/liveness",
                                                   "port": 34999}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/actuator/health/readiness",
                                                    "port": 34999}
    assert sidecar["livenessProbe"]["initialDelaySeconds"] == 180  # Dapr's defaults
    assert sidecar["readinessProbe"]["periodSeconds"] == 1
    assert sidecar["resources"] == {"limits": {"memory": "512Mi"}}
    assert {p["name"]: p["containerPort"] for p in sidecar["ports"]} == {
        "dapr-http": 3500, "dapr-grpc": 50001, "dapr-internal": 50002,
        "layotto-grpc": 34904, "actuator": 34999}
    assert env_of(sidecar)["NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env_of(sidecar)["DAPR_HOST_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert sidecar["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in injected["spec"]["volumes"]}
    assert volumes["pylotto-config"]["configMap"] == {"name": "appconfig"}
    assert volumes["pylotto-resources"]["configMap"] == {"name": "pylotto-resources",
                                                         "optional": True}
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    assert mounts["/etc/pylotto/config"] == "pylotto-config"
    assert mounts["/var/lib/pylotto"] == "pylotto-data" and mounts["/tmp"] == "pylotto-tmp"
    assert env_of(containers(injected)["app"]) == {
        "DAPR_HTTP_PORT": "3500", "DAPR_GRPC_PORT": "50001", "APP_PROTOCOL": "http"}
    labels = injected["metadata"]["labels"]
    assert labels["pylotto.io/sidecar-injected"] == "true"
    assert labels["dapr.io/app-id"] == "checkout" and labels["app"] == "checkout"
    # the Service the kubernetes name resolution looks up selects the injected pods
    docs = list(yaml.safe_load_all((MANIFESTS / "annotated-app.yaml").read_text()))
    service = next(d for d in docs if d["metadata"]["name"] == "checkout-dapr")
    assert service["spec"]["selector"].items() <= labels.items()


async def test_the_injected_command_is_one_pylotto_run_takes(webhook: Webhook) -> None:
    pod = plain_pod({"dapr.io/enabled": "true", "dapr.io/app-port": "7000",
                     "dapr.io/app-protocol": "grpc", "dapr.io/log-level": "debug",
                     "dapr.io/log-as-json": "true", "dapr.io/enable-api-logging": "true",
                     "dapr.io/grpc-port": "50011", "dapr.io/internal-grpc-port": "50012",
                     "dapr.io/sidecar-listen-addresses": "0.0.0.0",
                     "dapr.io/app-max-concurrency": "4", "dapr.io/max-body-size": "16Mi",
                     "dapr.io/http-read-buffer-size": "8",
                     "dapr.io/enable-app-health-check": "true",
                     "dapr.io/app-health-check-path": "/ready",
                     "dapr.io/app-channel-address": "127.0.0.1",
                     "dapr.io/placement-host-address": "placement:50005"})
    response = await webhook.review(pod)
    sidecar = containers(patched(pod, response))["pylotto"]
    args = flags(sidecar["args"])
    assert args["--app-protocol"] == "grpc" and args["--log-level"] == "debug"
    assert args["--dapr-grpc-port"] == "50011"
    assert args["--dapr-internal-grpc-port"] == "50012"
    assert args["--dapr-listen-addresses"] == "0.0.0.0"
    assert args["--max-body-size"] == "16Mi" and args["--read-buffer-size"] == "8Ki"
    assert args["--app-health-check-path"] == "/ready"
    assert "--log-as-json" in args and "--enable-api-logging" in args
    assert "--placement-host-address" not in args  # pylotto places actors without one
    assert args["--app-id"] == "web-0"  # no dapr.io/app-id: the pod's name, as Dapr
    app_env = env_of(containers(patched(pod, response))["app"])
    assert app_env["DAPR_GRPC_PORT"] == "50011" and app_env["APP_PROTOCOL"] == "grpc"
    context = cli.commands["run"].make_context("run", list(sidecar["args"][1:]))
    assert context.params["app_id"] == "web-0" and context.params["mode"] == "kubernetes"
    assert context.params["app_protocol"] == "grpc"


async def test_secrets_env_volumes_and_resources(webhook: Webhook) -> None:
    pod = plain_pod({"dapr.io/enabled": "true", "dapr.io/app-id": "billing",
                     "dapr.io/api-token-secret": "dapr-api-token",
                     "dapr.io/app-token-secret": "app-token",
                     "dapr.io/env": "FOO=bar,LIST=a,b,c",
                     "dapr.io/env-from-secret": "PASSWORD=db:password,TOKEN=tok",
                     "dapr.io/volume-mounts": "certs:/etc/certs,missing:/x",
                     "dapr.io/volume-mounts-rw": "scratch:/scratch",
                     "dapr.io/sidecar-cpu-request": "100m",
                     "dapr.io/sidecar-memory-request": "64Mi",
                     "dapr.io/sidecar-cpu-limit": "1",
                     "dapr.io/sidecar-seccomp-profile-type": "RuntimeDefault",
                     "pylotto.io/resources": "billing-components"},
                    volumes=[{"name": "certs", "secret": {"secretName": "certs"}},
                             {"name": "scratch", "emptyDir": {}}])
    pod["spec"]["containers"][0]["env"] = [{"name": "DAPR_HTTP_PORT", "value": "9999"}]
    response = await webhook.review(pod)
    injected = patched(pod, response)
    sidecar = containers(injected)["pylotto"]
    env = env_of(sidecar)
    assert env["DAPR_API_TOKEN"] == {"secretKeyRef": {"name": "dapr-api-token",
                                                      "key": "token"}}
    assert env["APP_API_TOKEN"] == {"secretKeyRef": {"name": "app-token", "key": "token"}}
    assert env["FOO"] == "bar" and env["LIST"] == "a,b,c"
    assert env["PASSWORD"] == {"secretKeyRef": {"name": "db", "key": "password"}}
    assert env["TOKEN"] == {"secretKeyRef": {"name": "tok", "key": "tok"}}
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert mounts["/etc/certs"]["readOnly"] is True
    assert mounts["/scratch"]["readOnly"] is False
    assert "/x" not in mounts
    assert response["warnings"] == ["pylotto sidecar: volume 'missing' of the volume-mounts "
                                    "annotation is not in the pod; not mounted"]
    assert sidecar["resources"] == {"requests": {"cpu": "100m", "memory": "64Mi"},
                                    "limits": {"cpu": "1"}}
    assert sidecar["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in injected["spec"]["volumes"]}
    assert volumes["pylotto-resources"]["configMap"]["name"] == "billing-components"
    assert set(volumes) >= {"certs", "scratch", "pylotto-data", "pylotto-tmp"}
    app_env = env_of(containers(injected)["app"])
    assert app_env["DAPR_HTTP_PORT"] == "9999"  # the app's own value is kept
    assert app_env["DAPR_GRPC_PORT"] == "50001"


async def test_layotto_annotated_pod(webhook: Webhook) -> None:
    pod = plain_pod({"layotto/sidecar-inject": "true",
                     "layotto/config-volume": "layotto-config-vol",
                     "layotto/sidecar-image": "registry.example.com/pylotto:2"},
                    volumes=[{"name": "layotto-config-vol",
                              "configMap": {"name": "layotto-config"}}])
    response = await webhook.review(pod)
    injected = patched(pod, response)
    sidecar = containers(injected)["pylotto"]
    assert sidecar["image"] == "registry.example.com/pylotto:2"
    assert flags(sidecar["args"])["--config"] == "/runtime/configs/config.json"
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    assert mounts["/runtime/configs"] == "layotto-config-vol"


async def test_an_injected_pod_is_left_alone(webhook: Webhook) -> None:
    pod = pod_of(annotated_deployment(), name="checkout-1")
    injected = patched(pod, await webhook.review(pod))
    again = await webhook.review(injected)
    assert again == {"uid": again["uid"], "allowed": True}
    for sidecar in ("daprd", "layotto"):  # another injector was there first
        other = plain_pod({"dapr.io/enabled": "true"})
        other["spec"]["containers"].append({"name": sidecar, "image": "x"})
        answer = await webhook.review(other)
        assert answer["allowed"] is True and "patch" not in answer


@pytest.mark.parametrize("annotations", [
    {}, {"dapr.io/enabled": "false"}, {"dapr.io/enabled": "no"},
    {"dapr.io/enabled": "yes"},  # Dapr's injector takes "true" (any case) only
    {"dapr.io/enabled": "true", "pylotto.io/inject": "false"},
    {"layotto/sidecar-inject": "false"},
])
async def test_pods_that_ask_for_no_sidecar(webhook: Webhook,
                                            annotations: dict[str, str]) -> None:
    answer = await webhook.review(plain_pod(annotations))
    assert answer["allowed"] is True and "patch" not in answer


async def test_namespaces_kinds_and_operations_not_served(webhook: Webhook) -> None:
    pod = plain_pod({"dapr.io/enabled": "true"})
    assert "patch" not in await webhook.review(pod, namespace="kube-system")
    assert "patch" not in await webhook.review(pod, operation="UPDATE")
    deployment = annotated_deployment()
    answer = await webhook.review(deployment, kind="Deployment")
    assert answer["allowed"] is True and "patch" not in answer


async def test_only_listed_namespaces(tmp_path: Path) -> None:
    from pylotto.deploy.injector import review

    options = InjectorOptions(namespaces=frozenset({"shop"}))
    pod = plain_pod({"dapr.io/enabled": "true"})

    def request(namespace: str) -> dict[str, Any]:
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "request": {"uid": "u1", "kind": {"group": "", "version": "v1",
                                                  "kind": "Pod"},
                            "namespace": namespace, "operation": "CREATE", "object": pod}}

    assert "patch" in review(request("shop"), options)["response"]
    assert "patch" not in review(request("default"), options)["response"]


@pytest.mark.parametrize(("annotations", "message"), [
    ({"dapr.io/app-port": "http"}, "dapr.io/app-port: 'http' is not a whole number"),
    ({"dapr.io/app-port": "70000"}, "dapr.io/app-port: 70000 is outside 1..65535"),
    ({"dapr.io/app-id": "Orders_1"}, "'Orders_1' is not a valid app id"),
    ({"dapr.io/app-protocol": "thrift"}, "dapr.io/app-protocol: 'thrift'"),
    ({"dapr.io/sidecar-listen-addresses": "[::1],127.0.0.1"}, "listens on one address"),
    ({"dapr.io/volume-mounts": "certs"}, "not <volume>:<absolute path>"),
    ({"dapr.io/config": "c", "layotto/config-volume": "v"}, "keep one"),
    ({"layotto/config-volume": "nowhere"}, "the pod has no volume 'nowhere'"),
    ({"dapr.io/unix-domain-socket-path": "tmp"}, "'tmp' is not an absolute path"),
])
async def test_unreadable_annotations_refuse_the_pod(
        webhook: Webhook, annotations: dict[str, str], message: str) -> None:
    answer = await webhook.review(plain_pod({"dapr.io/enabled": "true", **annotations}))
    assert answer["allowed"] is False and "patch" not in answer
    assert answer["status"]["code"] == 400
    assert message in answer["status"]["message"]


async def test_unsupported_annotations_are_warned(webhook: Webhook) -> None:
    pod = plain_pod({"dapr.io/enabled": "true", "dapr.io/enable-profiling": "true",
                     "dapr.io/graceful-shutdown-seconds": "30"})
    response = await webhook.review(pod)
    patched(pod, response)
    assert response["warnings"] == [
        "pylotto sidecar: annotation dapr.io/enable-profiling is not supported; ignored",
        "pylotto sidecar: annotation dapr.io/graceful-shutdown-seconds is not supported; "
        "ignored"]


async def test_unix_sockets_shared_with_the_app(webhook: Webhook) -> None:
    pod = plain_pod({"dapr.io/enabled": "true", "dapr.io/unix-domain-socket-path": "/tmp/dapr"})
    pod["spec"]["containers"].append({"name": "worker", "image": "w:1", "volumeMounts": [
        {"name": "cache", "mountPath": "/cache"}]})
    pod["spec"]["volumes"] = [{"name": "cache", "emptyDir": {}}]
    injected = patched(pod, await webhook.review(pod))
    sidecar = containers(injected)["pylotto"]
    assert flags(sidecar["args"])["--unix-domain-socket"] == "/var/run/dapr-sockets"
    assert {"name": "dapr-unix-domain-socket", "mountPath": "/var/run/dapr-sockets"} in \
        sidecar["volumeMounts"]
    for name in ("app", "worker"):
        assert {"name": "dapr-unix-domain-socket", "mountPath": "/tmp/dapr"} in \
            containers(injected)[name]["volumeMounts"]
    volumes = {v["name"]: v for v in injected["spec"]["volumes"]}
    assert volumes["dapr-unix-domain-socket"] == {"name": "dapr-unix-domain-socket",
                                                  "emptyDir": {"medium": "Memory"}}
    context = cli.commands["run"].make_context("run", list(sidecar["args"][1:]))
    assert str(context.params["unix_domain_socket"]) == "/var/run/dapr-sockets"


async def test_native_sidecar_is_an_init_container(webhook: Webhook) -> None:
    pod = plain_pod({"dapr.io/enabled": "true", "dapr.io/enable-native-sidecar": "true"})
    injected = patched(pod, await webhook.review(pod))
    assert [c["name"] for c in injected["spec"]["containers"]] == ["app"]
    [sidecar] = injected["spec"]["initContainers"]
    assert sidecar["name"] == "pylotto" and sidecar["restartPolicy"] == "Always"
    assert (await webhook.review(injected)).get("patch") is None  # found there too
    pod["spec"]["initContainers"] = [{"name": "migrate", "image": "m:1"}]
    injected = patched(pod, await webhook.review(pod))
    assert [c["name"] for c in injected["spec"]["initContainers"]] == ["migrate", "pylotto"]


async def test_pod_without_labels_or_volumes_and_generate_name(webhook: Webhook) -> None:
    pod = plain_pod({"dapr.io/enabled": "true"})
    del pod["metadata"]["name"]
    pod["metadata"]["generateName"] = "web-7f9c-"
    injected = patched(pod, await webhook.review(pod))
    assert injected["metadata"]["labels"]["dapr.io/app-id"] == "web-7f9c"
    assert [v["name"] for v in injected["spec"]["volumes"]] == [
        "pylotto-data", "pylotto-tmp", "pylotto-resources"]


async def test_malformed_requests(webhook: Webhook) -> None:
    status, text = await webhook.post(b"{not json")
    assert status == 400 and "not an AdmissionReview" in text
    status, text = await webhook.post(b"[]")
    assert status == 400 and "not a JSON object" in text
    v1beta1 = {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
               "request": {"uid": "u"}}
    status, text = await webhook.post(json.dumps(v1beta1).encode())
    assert status == 400 and "admission.k8s.io/v1" in text
    no_uid = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}
    status, text = await webhook.post(json.dumps(no_uid).encode())
    assert status == 400 and "uid" in text
    status, text = await webhook.post(b"")
    assert status == 400 and "empty body" in text
    status, text = await webhook.post(b"{}", content_type="text/plain")
    assert status == 415
    no_object = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                 "request": {"uid": "u2", "kind": {"group": "", "version": "v1",
                                                   "kind": "Pod"}, "operation": "CREATE"}}
    status, answer = await webhook.post(json.dumps(no_object).encode())
    assert status == 200 and answer["response"]["allowed"] is False
    assert answer["response"]["uid"] == "u2"
    async with webhook.session.get(webhook.url) as response:
        assert response.status == 405


def test_the_probes_are_the_actuators_routes() -> None:
    from pylotto.facades.actuator import build_app

    app = build_app(cast(Any, None), cast(Any, None))
    routes = {(route.method, route.resource.canonical) for route in app.router.routes()
              if route.resource is not None}
    assert ("GET", sidecar_patch.LIVENESS_PATH) in routes
    assert ("GET", sidecar_patch.READINESS_PATH) in routes


async def test_a_request_as_the_api_server_sends_it(webhook: Webhook) -> None:
    """A ReplicaSet's pod after the API server's defaulting: generateName, owner, the service
    account's projected volume, tolerations, an app container with env and mounts."""
    body = (Path(__file__).parent / "data" / "admission_review_pod.json").read_bytes()
    status, answer = await webhook.post(body)
    assert status == 200
    response = answer["response"]
    assert response["uid"] == "1f0b3c2e-6a1d-4d7e-9a55-2f6c1e0c9b1a"
    pod = json.loads(body)["request"]["object"]
    injected = patched(pod, response)
    assert [v["name"] for v in injected["spec"]["volumes"]] == [
        "kube-api-access-7xk2p", "pylotto-data", "pylotto-tmp", "pylotto-resources",
        "pylotto-config"]
    app = containers(injected)["app"]
    assert [e["name"] for e in app["env"]] == ["LOG_FORMAT", "DAPR_HTTP_PORT",
                                               "DAPR_GRPC_PORT", "APP_PROTOCOL"]
    assert injected["metadata"]["labels"] == {
        "app": "orders", "pod-template-hash": "6f9d8b7c5d", "dapr.io/app-id": "orders",
        "pylotto.io/sidecar-injected": "true", "dapr.io/metrics-enabled": "true"}
    args = flags(containers(injected)["pylotto"]["args"])
    assert args["--app-id"] == "orders" and args["--log-level"] == "debug"
