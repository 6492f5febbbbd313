"""GetSecret / GetBulkSecret through the real sidecar (local.file and local.env)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from pylotto.proto.layotto import runtime_pb2
from tests.e2e.sidecar import Sidecar


@pytest.fixture
def car(
    start_sidecar: Callable[..., Sidecar], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Sidecar:
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"redisPassword": "pw", "db": {"user": "u", "pass": "p"}}))
    monkeypatch.setenv("E2E_SECRET_TOKEN", "env-value")  # the sidecar inherits the environment
    return start_sidecar(components={"secretstores": {
        "files": {"type": "local.file", "metadata": {"secretsFile": str(secrets)}},
        "grouped": {"type": "secretstores.local.file",
                    "metadata": {"secretsFile": str(secrets), "multiValued": "true"}},
        "env": {"type": "local.env", "metadata": {"prefix": "E2E_SECRET_"}},
    }})


def test_get_secret_from_a_file(car: Sidecar) -> None:
    stub = car.stub()
    reply = stub.GetSecret(runtime_pb2.GetSecretRequest(store_name="files", key="db:user"))
    assert dict(reply.data) == {"db:user": "u"}
    reply = stub.GetSecret(runtime_pb2.GetSecretRequest(store_name="grouped", key="db"))
    assert dict(reply.data) == {"user": "u", "pass": "p"}
    bulk = stub.GetBulkSecret(runtime_pb2.GetBulkSecretRequest(store_name="files"))
    assert {k: dict(v.secrets) for k, v in bulk.data.items()} == {
        "redisPassword": {"redisPassword": "pw"}, "db:user": {"db:user": "u"},
        "db:pass": {"db:pass": "p"},
    }


def test_get_secret_from_the_environment(car: Sidecar) -> None:
    stub = car.stub()
    reply = stub.GetSecret(runtime_pb2.GetSecretRequest(store_name="env", key="TOKEN"))
    assert dict(reply.data) == {"TOKEN": "env-value"}
    bulk = stub.GetBulkSecret(runtime_pb2.GetBulkSecretRequest(store_name="env"))
    assert {k: dict(v.secrets) for k, v in bulk.data.items()} == {"TOKEN": {"TOKEN": "env-value"}}


def test_error_codes(car: Sidecar) -> None:
    stub = car.stub()
    cases = [
        (runtime_pb2.GetSecretRequest(store_name="files", key="db"), grpc.StatusCode.NOT_FOUND,
         "secret db not found"),
        (runtime_pb2.GetSecretRequest(store_name="env", key="MISSING"),
         grpc.StatusCode.NOT_FOUND, "E2E_SECRET_MISSING"),
        (runtime_pb2.GetSecretRequest(store_name="nope", key="k"),
         grpc.StatusCode.INVALID_ARGUMENT, "error when get secret but not find : nope"),
        (runtime_pb2.GetSecretRequest(store_name="files", key=""),
         grpc.StatusCode.INVALID_ARGUMENT, "secret key is empty"),
    ]
    for request, code, message in cases:
        with pytest.raises(grpc.RpcError) as info:
            stub.GetSecret(request, timeout=5)
        assert info.value.code() == code
        assert message in (info.value.details() or "")


def test_a_missing_secrets_file_stops_start_up(
    start_sidecar: Callable[..., Sidecar], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(RuntimeError, match=r"nowhere\.json"):
        start_sidecar(components={"secretstores": {
            "files": {"type": "local.file", "metadata": {"secretsFile": str(missing)}}}})
