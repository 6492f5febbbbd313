"""Dapr's metadata API (gRPC GetMetadata through the dapr 1.19 SDK, and ``/v1.0/metadata``)
for components loaded from Dapr manifests: the version each manifest gives ("" when it gives
none, as daprd reports) and the capabilities daprd reports for each type, as far as pylotto
serves them."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from dapr.clients import DaprClient

from tests.e2e.sidecar import Sidecar
from tests.support.servers import require

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

MANIFESTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: kv}}
spec:
  type: state.redis
  metadata:
  - name: redisHost
    value: 127.0.0.1:6379
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: docs}}
spec:
  type: state.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: cache}}
spec:
  type: state.memcached
  version: v1
  metadata:
  - name: hosts
    value: 127.0.0.1:11211
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: bus}}
spec:
  type: pubsub.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: hook}}
spec:
  type: bindings.http
  version: v1
  metadata:
  - name: url
    value: http://127.0.0.1:9/hook
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: vault}}
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: {secrets}
  - name: multiValued
    value: "true"
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: locks}}
spec:
  type: lock.in-memory
  version: v1
"""

EXPECTED = {
    # name: (type, version, capabilities)
    "kv": ("state.redis", "", ["ETAG", "TRANSACTIONAL", "TTL"]),
    "docs": ("state.in-memory", "v1", ["ETAG", "QUERY_API", "TRANSACTIONAL", "TTL"]),
    "cache": ("state.memcached", "v1", []),
    "bus": ("pubsub.in-memory", "v1", []),
    "hook": ("bindings.http", "v1", ["OUTPUT_BINDING"]),
    "vault": ("secretstores.local.file", "v1", ["MULTIPLE_KEY_VALUES_PER_SECRET"]),
    "locks": ("lock.in-memory", "v1", []),
}


def test_versions_and_capabilities(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require("redis")
    require("memcached")
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"db": {"user": "u", "password": "p"}}))
    resources = tmp_path / "components"
    resources.mkdir()
    (resources / "components.yaml").write_text(MANIFESTS.format(secrets=secrets))
    car = Sidecar(tmp_path / "car", components={}, app={"app_id": "meta"},
                  extra_args=["--resources-path", str(resources)])
    car.start()
    try:
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")
        with DaprClient() as dapr:
            registered = dapr.get_metadata().registered_components
        over_grpc = {c.name: (c.type, c.version, list(c.capabilities)) for c in registered}
        assert over_grpc == EXPECTED
        with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata") as resp:
            components = json.load(resp)["components"]
        over_http = {c["name"]: (c["type"], c["version"], c.get("capabilities", []))
                     for c in components}
        assert over_http == EXPECTED
    finally:
        car.stop()
