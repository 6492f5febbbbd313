"""Secrets never reach the logs: the API token, secret values read through the API, and
passwords in component metadata, with every logger at debug."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar

TOKEN = "tok-5up3r-53cr3t"
SECRET = "pa55-w0rd-v4lu3"
DB_PASSWORD = "db-pa55-9x7"


def test_secrets_are_absent_from_debug_logs(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"db": SECRET}))
    components = {
        "secretstores": {"files": {"type": "local.file",
                                   "metadata": {"secretsFile": str(secrets)}}},
        "state": {"db": {"type": "postgresql", "metadata": {
            "connectionString": f"postgres://postgres:{DB_PASSWORD}@127.0.0.1:1/test",
            "timeout": "1s"}}},
    }
    car = Sidecar(tmp_path / "bad", components, env={"DAPR_API_TOKEN": TOKEN})
    with pytest.raises(RuntimeError, match="exited with 2"):
        car.start()  # the database is unreachable: the start fails, naming the component
    failed_logs = car.logs()
    assert "state.db" in failed_logs
    del components["state"]
    car = Sidecar(tmp_path / "good", components, env={"DAPR_API_TOKEN": TOKEN})
    car.start()
    try:
        stub = car.stub()
        auth = (("dapr-api-token", TOKEN),)
        reply = stub.GetSecret(runtime_pb2.GetSecretRequest(store_name="files", key="db"),
                               metadata=auth)
        assert reply.data["db"] == SECRET
        with pytest.raises(grpc.RpcError):
            stub.GetSecret(runtime_pb2.GetSecretRequest(store_name="files", key="nope"),
                           metadata=(("dapr-api-token", "wrong-" + TOKEN),))
    finally:
        car.stop()
    for logs in (failed_logs, car.logs()):
        for secret in (TOKEN, SECRET, DB_PASSWORD):
            assert secret not in logs
