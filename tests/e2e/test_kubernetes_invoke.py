"""A call by app id through name resolution ``kubernetes`` between two real sidecars: the
template names the target's address and the system resolver answers it (``localhost`` stands
for the cluster DNS name of the app's Service)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.sidecar import Sidecar
from tests.e2e.test_invoke_between_sidecars import app_server, http_invoke, layotto_invoke

pytestmark = pytest.mark.e2e


def test_invoke_through_the_kubernetes_resolver(tmp_path: Path) -> None:
    server, port = app_server("target-0")
    target = Sidecar(tmp_path / "target", app={"app_id": "localhost", "port": port})
    caller = Sidecar(tmp_path / "caller", app={"app_id": "frontend"})
    _, _, grpc_port = target.dapr_grpc_address.rpartition(":")
    caller.extra_config = {"name_resolution": {"type": "kubernetes", "metadata": {
        "template": "{{.ID}}:{{.Port}}", "port": grpc_port, "namespace": "shop"}}}
    with ThreadPoolExecutor(2) as pool:  # both start at once
        list(pool.map(Sidecar.start, (target, caller)))
    try:
        status, _, body = http_invoke(caller, "localhost", "orders/7")
        assert status == 200 and body["instance"] == "target-0"
        assert body["path"] == "/orders/7" and body["caller"] == "frontend"
        assert layotto_invoke(caller, "localhost", "ping")["instance"] == "target-0"
        status, _, body = http_invoke(caller, "no-such-app.invalid", "x")  # no DNS answer
        assert status == 500 and body["errorCode"] == "ERR_DIRECT_INVOKE"
        assert "couldn't find service: no-such-app.invalid" in body["message"]
    finally:
        caller.stop()
        target.stop()
        server.shutdown()
