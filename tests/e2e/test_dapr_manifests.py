"""Component manifests in Dapr's YAML form, loaded with ``--resources-path``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.sidecar import Sidecar

MANIFESTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: files}}
spec:
  type: secretstores.local.file
  version: v1
  metadata:
  - name: secretsFile
    value: {secrets}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: statestore}}
spec:
  type: state.sqlite
  version: v1
  metadata:
  - name: connectionString
    secretKeyRef: {{name: db-path, key: db-path}}
auth:
  secretStore: files
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: billing-only}}
spec:
  type: lock.in-memory
scopes: [billing]
"""


def test_manifests_are_loaded_with_secret_refs_and_scopes(tmp_path: Path) -> None:
    database = tmp_path / "orders.db"
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"db-path": str(database)}))
    resources = tmp_path / "components"
    resources.mkdir()
    (resources / "components.yaml").write_text(MANIFESTS.format(secrets=secrets))
    car = Sidecar(tmp_path / "car", components={}, app={"app_id": "orders"},
                  extra_args=["--resources-path", str(resources)])
    car.start()
    try:
        from pylotto.client import Client

        with Client(car.grpc_address) as client:
            client.save_state("statestore", "k", b"v")
            assert client.get_state("statestore", "k").value == b"v"
        assert database.exists()  # the path came from the secret store
        import urllib.request

        with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata") as resp:
            names = {c["name"] for c in json.load(resp)["components"]}
        assert names == {"files", "statestore"}  # billing-only is scoped to another app
    finally:
        car.stop()


def test_a_secret_that_does_not_exist_stops_the_start(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text("{}")
    resources = tmp_path / "components"
    resources.mkdir()
    (resources / "c.yaml").write_text(MANIFESTS.format(secrets=secrets))
    result = subprocess.run(
        [sys.executable, "-m", "pylotto", "run", "--resources-path", str(resources),
         "--app-id", "orders", "--dapr-grpc-port", "0", "--dapr-http-port", "0",
         "--grpc-address", "127.0.0.1:0", "--actuator-address", "127.0.0.1:0",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "statestore" in result.stderr and "'db-path'" in result.stderr
