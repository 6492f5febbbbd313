"""Dapr's bindings on pylotto, as a Dapr app uses them: components from Dapr manifests
(``bindings.redis``, ``bindings.postgresql``, ``bindings.mysql``, ``bindings.localstorage``,
``bindings.rabbitmq``) loaded by ``pylotto run --resources-path``, called with the dapr 1.19
SDK's ``invoke_binding``; a RabbitMQ binding's messages delivered to an HTTP app."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path

import grpc
import pytest
from dapr.clients import DaprClient

from tests.e2e.sidecar import Sidecar
from tests.support.http_app import JsonHandler, serve
from tests.support.servers import require

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
              pytest.mark.timeout(120)]


def manifest(name: str, kind: str, metadata: dict[str, str]) -> str:
    items = "\n".join(f"  - {{name: {k}, value: {json.dumps(v)}}}" for k, v in metadata.items())
    return (f"apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}}}\n"
            f"spec:\n  type: {kind}\n  version: v1\n  metadata:\n{items}\n")


def test_dapr_sdk_invokes_each_binding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require("redis", "postgresql", "mysql")
    tag = uuid.uuid4().hex[:8]
    resources = tmp_path / "resources"
    resources.mkdir()
    files = tmp_path / "files"
    for name, kind, metadata in (
        ("cache", "bindings.redis", {"redisHost": "localhost:6379"}),
        ("pg", "bindings.postgresql",
         {"connectionString": "host=127.0.0.1 port=5432 user=postgres dbname=test"}),
        ("maria", "bindings.mysql", {"url": "root:@tcp(127.0.0.1:3306)/test"}),
        ("disk", "bindings.localstorage", {"rootPath": str(files)}),
    ):
        (resources / f"{name}.yaml").write_text(manifest(name, kind, metadata))
    car = Sidecar(tmp_path / "car", components={},
                  extra_args=["--resources-path", str(resources)]).start()
    key = f"e2e-binding-{tag}"
    table = f"e2e_binding_{tag}"
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        with DaprClient() as client:
            client.invoke_binding("cache", "create", "value-1",
                                  binding_metadata={"key": key, "ttlInSeconds": "60"})
            got = client.invoke_binding("cache", "get", binding_metadata={"key": key})
            assert got.data == b"value-1"
            client.invoke_binding("cache", "delete", binding_metadata={"key": key})
            assert client.invoke_binding("cache", "get", binding_metadata={"key": key}).data \
                == b""

            with pytest.raises(grpc.RpcError) as refused:
                client.invoke_binding("cache", "upsert", binding_metadata={"key": key})
            error = refused.value
            assert isinstance(error, grpc.Call)
            assert error.code() == grpc.StatusCode.INTERNAL, "daprd's code"
            assert error.details() == (
                "error invoking output binding cache: binding cache does not support operation "
                "upsert. supported operations:create delete get increment")

            for binding, marks in (("pg", "$1, $2"), ("maria", "?, ?")):
                client.invoke_binding(binding, "exec", binding_metadata={
                    "sql": f"CREATE TABLE {table}_{binding} (id INT, name VARCHAR(10))"})
                added = client.invoke_binding(binding, "exec", binding_metadata={
                    "sql": f"INSERT INTO {table}_{binding} VALUES ({marks})",
                    "params": '[7, "seven"]'})
                assert added.binding_metadata["rows-affected"] == "1"
                assert added.binding_metadata["operation"] == "exec"
                rows = client.invoke_binding(binding, "query", binding_metadata={
                    "sql": f"SELECT id, name FROM {table}_{binding}"})
                assert json.loads(rows.data) == ([[7, "seven"]] if binding == "pg"
                                                 else [{"id": 7, "name": "seven"}])
                assert set(rows.binding_metadata) >= {"start-time", "end-time", "duration"}
                client.invoke_binding(binding, "exec",
                                      binding_metadata={"sql": f"DROP TABLE {table}_{binding}"})

            created = client.invoke_binding("disk", "create", "stored text",
                                            binding_metadata={"fileName": "notes/a.txt"})
            assert json.loads(created.data) == {"fileName": "notes/a.txt"}
            assert client.invoke_binding("disk", "get", binding_metadata={
                "fileName": "notes/a.txt"}).data == b"stored text"
            listed = json.loads(client.invoke_binding("disk", "list").data)
            assert listed == [str((files / "notes" / "a.txt").resolve())]
            client.invoke_binding("disk", "delete", binding_metadata={"fileName": "notes/a.txt"})
            assert not (files / "notes" / "a.txt").exists()
    finally:
        car.stop()


def queue_depth(queue: str) -> int:
    import aio_pika

    async def depth() -> int:
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        try:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            count: int = declared.declaration_result.message_count
            return count
        finally:
            await connection.close()

    return asyncio.run(depth())


def delete_queue(queue: str) -> None:
    import aio_pika

    async def delete() -> None:
        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        try:
            await (await connection.channel()).queue_delete(queue)
        finally:
            await connection.close()

    asyncio.run(delete())


def test_rabbitmq_messages_reach_an_http_app_and_are_acked_after_its_2xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("rabbitmq")
    queue = f"e2e-binding-{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, bytes, str]] = []
    lock = threading.Lock()

    class App(JsonHandler):
        def do_OPTIONS(self) -> None:
            self.reply({}, 200 if self.path == "/orders" else 404)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                got.append((self.path, body, self.headers.get("tenant", "")))
                first = len(got) == 1
            self.reply({}, 500 if first else 200)

    app = serve(App)
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "orders.yaml").write_text(manifest("orders", "bindings.rabbitmq", {
        "host": "amqp://guest:guest@127.0.0.1:5672/", "queueName": queue, "durable": "true"}))
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "rabbitapp", "port": app.server_address[1]},
                  extra_args=["--resources-path", str(resources)]).start()
    try:
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        with DaprClient() as client:
            client.invoke_binding("orders", "create", '{"id": 1}',
                                  binding_metadata={"tenant": "acme"})
        deadline = time.monotonic() + 30
        while len(got) < 2:
            assert time.monotonic() < deadline, f"not delivered twice: {got}"
            time.sleep(0.05)
        assert got[:2] == [("/orders", b'{"id": 1}', "acme")] * 2, "the 500 requeued it"
        deadline = time.monotonic() + 15
        while queue_depth(queue):
            assert time.monotonic() < deadline, "the 200 did not ack it"
            time.sleep(0.1)
    finally:
        car.stop()
        app.shutdown()
        delete_queue(queue)


def test_layotto_api_reaches_the_same_bindings(tmp_path: Path) -> None:
    """Layotto's ``InvokeBinding`` (spec.proto.runtime.v1.Runtime) on a Layotto-style config
    with the short type names: pylotto's codes (a missing key INVALID_ARGUMENT)."""
    from pylotto.proto.layotto import runtime_pb2

    require("redis", "postgresql")
    key = f"e2e-layotto-binding-{uuid.uuid4().hex[:8]}"
    car = Sidecar(tmp_path / "car", components={"bindings": {
        "cache": {"type": "redis", "metadata": {"redisHost": "127.0.0.1:6379"}},
        "pg": {"type": "postgresql", "metadata": {
            "connectionString": "postgres://postgres@127.0.0.1:5432/test"}},
    }}).start()
    try:
        stub = car.stub()
        stub.InvokeBinding(runtime_pb2.InvokeBindingRequest(
            name="cache", operation="create", data=b"v", metadata={"key": key}), timeout=10)
        got = stub.InvokeBinding(runtime_pb2.InvokeBindingRequest(
            name="cache", operation="get", metadata={"key": key, "delete": "true"}), timeout=10)
        assert got.data == b"v"
        with pytest.raises(grpc.RpcError) as refused:
            stub.InvokeBinding(runtime_pb2.InvokeBindingRequest(
                name="cache", operation="get"), timeout=10)
        assert isinstance(refused.value, grpc.Call)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "missing key in request metadata" in (refused.value.details() or "")
        rows = stub.InvokeBinding(runtime_pb2.InvokeBindingRequest(
            name="pg", operation="query", metadata={"sql": "SELECT $1::int * 2",
                                                    "params": "[21]"}), timeout=10)
        assert rows.data == b"[[42]]"
        assert rows.metadata["operation"] == "query"
    finally:
        car.stop()


def test_http_api_hands_the_binding_the_json_of_data_as_daprd(tmp_path: Path) -> None:
    """``POST /v1.0/bindings/<name>``: daprd passes ``json.Marshal(data)`` on — a string keeps
    its quotes, an object is re-encoded by Go — and answers the binding's metadata as
    ``metadata.<key>`` headers."""
    import urllib.request

    import redis

    require("redis", "postgresql")
    key = f"e2e-http-binding-{uuid.uuid4().hex[:8]}"
    car = Sidecar(tmp_path / "car", components={"bindings": {
        "cache": {"type": "bindings.redis", "metadata": {"redisHost": "127.0.0.1:6379"}},
        "pg": {"type": "bindings.postgresql", "metadata": {
            "connectionString": "postgres://postgres@127.0.0.1:5432/test"}},
    }}).start()
    server = redis.Redis(host="127.0.0.1", port=6379)

    def post(name: str, body: object) -> tuple[int, bytes, dict[str, str]]:
        request = urllib.request.Request(
            f"{car.dapr_http_url}/v1.0/bindings/{name}", data=json.dumps(body).encode(),
            method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)

    try:
        for data, stored in (("hello", b'"hello"'),
                             ({"b": 1.0, "a": "<"}, b'{"a":"\\u003c","b":1}'),
                             (None, b"null")):
            body = {"operation": "create", "metadata": {"key": key}}
            if data is not None:
                body["data"] = data
            status, _, _ = post("cache", body)
            assert status == 204
            assert server.get(key) == stored
        status, raw, headers = post("pg", {"operation": "query",
                                           "metadata": {"sql": "SELECT 1 AS one"}})
        assert (status, raw) == (200, b"[[1]]")
        assert headers["metadata.operation"] == "query"
        assert headers["metadata.sql"] == "SELECT 1 AS one"
    finally:
        server.delete(key)
        server.close()
        car.stop()
