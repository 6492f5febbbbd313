"""What the Layotto quickstart replays share: Layotto's quickstart configs as JSON dicts (the
same sections, types and metadata keys as mosn/layotto f9681450 ``configs/``; listen ports
replaced by free ports, file paths by the test's own), a ``pylotto run -c <config>`` process,
and the printing of Go's ``fmt`` verbs the Go demo clients use, so that a replayed step prints
the same line as the quickstart shows."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from tests.support.ports import free_port

# ---- Layotto's configs ---------------------------------------------------------------------


def _grpc_listener(address: str, grpc_config: dict[str, Any], *, network: str = "",
                   stream_filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    listener: dict[str, Any] = {
        "name": "grpc", "address": address, "bind_port": True,
        "filter_chains": [{"filters": [{"type": "grpc", "config": {
            "server_name": "runtime", "grpc_config": grpc_config}}]}]}
    if network:
        listener["network"] = network
    if stream_filters:
        listener["stream_filters"] = stream_filters
    return listener


def _actuator_listener(address: str) -> dict[str, Any]:
    return {"name": "actuator", "address": address, "bind_port": True,
            "filter_chains": [{"filters": [{"type": "proxy", "config": {
                "downstream_protocol": "Http1", "upstream_protocol": "Http1",
                "router_config_name": "actuator_dont_need_router"}}]}],
            "stream_filters": [{"type": "actuator_filter"}]}


def _server(listeners: list[dict[str, Any]], *, level: str = "DEBUG",
            routers: bool = True) -> dict[str, Any]:
    server: dict[str, Any] = {"default_log_path": "stdout", "default_log_level": level}
    if routers:
        server["routers"] = [{"router_config_name": "actuator_dont_need_router"}]
    server["listeners"] = listeners
    return server


def _xds() -> dict[str, Any]:
    """The xDS sections most of Layotto's configs carry (MOSN's dynamic configuration;
    pylotto warns about them by name). Their cluster is never dialled."""
    return {
        "dynamic_resources": {
            "lds_config": {"ads": {}, "initial_fetch_timeout": "0s",
                           "resource_api_version": "V3"},
            "cds_config": {"ads": {}, "initial_fetch_timeout": "0s",
                           "resource_api_version": "V3"},
            "ads_config": {"api_type": "GRPC", "set_node_on_first_message_only": True,
                           "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]}},
        "static_resources": {"clusters": [{
            "name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
            "lb_policy": "ROUND_ROBIN",
            "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1", "port_value": free_port()}}}}]}]}}]},
    }


def _tracing_and_metrics(metrics_port: int) -> dict[str, Any]:
    return {"tracing": {"enable": True, "driver": "SOFATracer", "config": {
                "generator": "mosntracing", "exporter": ["stdout"]}},
            "metrics": {"sinks": [{"type": "prometheus", "config": {"port": metrics_port}}]}}


HELLOS = {"helloworld": {"type": "helloworld", "hello": "greeting"}}


def config_hello(address: str) -> dict[str, Any]:
    """The config of the Go SDK's hello quickstart (``sdk_reference/go/start.md``, which
    names it ``configs/config_hello.json`` and shows it inline)."""
    return {"servers": [_server([_grpc_listener(address, {"hellos": HELLOS})],
                                routers=False)]}


def config_redis(address: str, actuator: str, redis_port: int,
                 callback_port: int) -> dict[str, Any]:
    """``configs/config_redis.json``: state, sequencer, lock and pub/sub on Redis."""
    host = f"localhost:{redis_port}"
    grpc_config = {
        "hellos": HELLOS,
        "state": {"state_demo": {"type": "redis", "metadata": {
            "redisHost": host, "redisPassword": ""}}},
        "sequencer": {"sequencer_demo": {"type": "redis", "metadata": {
            "redisHost": f"127.0.0.1:{redis_port}", "redisPassword": ""}}},
        "lock": {"lock_demo": {"type": "redis", "metadata": {
            "redisHost": host, "redisPassword": ""}}},
        "pub_subs": {"pub_subs_demo": {"type": "redis", "metadata": {
            "redisHost": host, "redisPassword": ""}}},
        "app": {"app_id": "app1", "grpc_callback_port": callback_port},
    }
    return {"servers": [_server([_grpc_listener(address, grpc_config),
                                 _actuator_listener(actuator)])], **_xds()}


FLOW_CONTROL = {"type": "flowControlFilter", "config": {
    "global_switch": True, "limit_key_type": "PATH", "rules": [{
        "resource": "/spec.proto.runtime.v1.Runtime/SayHello", "grade": 1, "threshold": 5}]}}


def runtime_config(address: str, etcd_port: int, metrics_port: int) -> dict[str, Any]:
    """``configs/runtime_config.json``: configuration, sequencer and lock on etcd, and the
    flow-control filter on SayHello."""
    endpoint = f"localhost:{etcd_port}"
    grpc_config = {
        "hellos": HELLOS,
        "config_store": {"config_demo": {"type": "etcd", "address": [f"127.0.0.1:{etcd_port}"],
                                         "timeout": "10"}},
        "sequencer": {"sequencer_demo": {"type": "etcd", "metadata": {
            "endpoints": endpoint, "segmentCacheEnable": "false", "segmentStep": "1",
            "username": "", "password": "", "dialTimeout": "5"}}},
        "lock": {"lock_demo": {"type": "etcd", "metadata": {
            "endpoints": endpoint, "username": "", "password": "", "keyPrefixPath": "/lock",
            "dialTimeout": "5"}}},
    }
    listener = _grpc_listener(address, grpc_config,
                              stream_filters=[FLOW_CONTROL, {"type": "grpc_metric"}])
    return {"servers": [_server([listener], level="INFO", routers=False)],
            **_tracing_and_metrics(metrics_port), **_xds()}


def config_standalone(address: str, actuator: str, secrets_file: Path, metrics_port: int,
                      callback_port: int) -> dict[str, Any]:
    """``configs/config_standalone.json``: every API on in-memory and local components. Its
    ``bindings_demo`` (an ``http`` binding to https://mosn.io/layotto) is kept: it is only
    dialled when invoked, and no quickstart invokes it."""
    grpc_config = {
        "hellos": HELLOS,
        "state": {"state_demo": {"type": "in-memory", "metadata": {}}},
        "lock": {"lock_demo": {"type": "in-memory", "metadata": {}}},
        "pub_subs": {"pub_subs_demo": {"type": "in-memory", "metadata": {"consumerID": "1"}}},
        "sequencer": {"sequencer_demo": {"type": "in-memory", "metadata": {}}},
        "file": {"file_demo": {"type": "local", "metadata": {}}},
        "secret_store": {
            "secret_demo": {"type": "local.file", "metadata": {"secretsFile": str(secrets_file)}},
            "secret_demo1": {"type": "local.env", "metadata": {}}},
        "bindings": {"bindings_demo": {"type": "http", "metadata": {
            "url": "https://mosn.io/layotto"}}},
        "custom_component": {"helloworld": {"demo": {"type": "in-memory", "metadata": {}}}},
        "app": {"app_id": "app1", "grpc_callback_port": callback_port},
    }
    return {"servers": [_server([_grpc_listener(address, grpc_config),
                                 _actuator_listener(actuator)])],
            **_tracing_and_metrics(metrics_port), **_xds()}


def config_ref_example(address: str, actuator: str, etcd_port: int, redis_port: int,
                       secrets_file: Path, callback_port: int) -> dict[str, Any]:
    """``configs/config_ref_example.json``: a hello and a Redis sequencer whose password is
    injected from the ``local.file`` secret store (``secret_ref``)."""
    ref = [{"store_name": "local.file", "key": "db-user-pass:password",
            "sub_key": "db-user-pass:password", "inject_as": "redisPassword"}]
    grpc_config = {
        "hellos": {"helloworld": {"type": "helloworld", "hello": "greeting", "secret_ref": ref,
                                  "component_ref": {"config_store": "config_demo",
                                                    "secret_store": "local.file"}}},
        "config_store": {"config_demo": {"type": "etcd", "address": [f"127.0.0.1:{etcd_port}"],
                                         "timeout": "10"}},
        "secret_store": {
            "local.file": {"type": "local.file", "metadata": {"secretsFile": str(secrets_file)}},
            "local.env": {"type": "local.env", "metadata": {}}},
        "sequencer": {"redis": {"type": "redis", "metadata": {
            "redisHost": f"127.0.0.1:{redis_port}"}, "secret_ref": ref}},
        "app": {"app_id": "app1", "grpc_callback_port": callback_port},
    }
    return {"servers": [_server([_grpc_listener(address, grpc_config),
                                 _actuator_listener(actuator)])], **_xds()}


def rpc_http_example(address: str, egress: str, echo_port: int) -> dict[str, Any]:
    """``demo/rpc/http/example.json`` (the rpc hello world): the ``rpcs.mosn`` invoker with
    an HTTP channel to the egress listener, whose router sends header ``id:
    HelloService:1.0`` to cluster ``http_server`` (the echo server)."""
    router = {"router_config_name": "http_router", "virtual_hosts": [{
        "name": "http_host", "domains": ["*"], "routers": [{
            "match": {"headers": [{"name": "id", "value": "HelloService:1.0"}]},
            "route": {"cluster_name": "http_server"}}]}]}
    grpc_config = {"rpcs": {"mosn": {"config": {"channel": [
        {"size": 16, "protocol": "http", "listener": "egress_runtime_http"}]}}}}
    egress_listener = {
        "name": "egress_runtime_http", "type": "egress", "address": egress, "bind_port": True,
        "network": "tcp", "filter_chains": [{"filters": [{"type": "proxy", "config": {
            "downstream_protocol": "Http1", "name": "proxy_config",
            "router_config_name": "http_router", "upstream_protocol": "Http1"}}]}]}
    server = _server([_grpc_listener(address, grpc_config), egress_listener], routers=False)
    server["routers"] = [router]
    return {"servers": [server],
            "cluster_manager": {"tls_context": {}, "clusters": [{
                "name": "http_server", "type": "SIMPLE", "lb_type": "LB_RANDOM",
                "hosts": [{"address": f"127.0.0.1:{echo_port}",
                           "hostname": "downstream_machine1", "weight": 1}]}]},
            **_xds()}


def config_uds(socket: Path) -> dict[str, Any]:
    """``configs/config_uds.json``: the hello API on a Unix socket."""
    return {"servers": [_server([_grpc_listener(str(socket), {"hellos": HELLOS},
                                                network="unix")])]}


def config_file_on_local(address: str, pprof_port: int) -> dict[str, Any]:
    """``configs/config_file.json`` with its ``minio`` store (a MinIO server at
    127.0.0.1:9000, which does not run here) replaced by the ``local`` file store under the
    same name ``file_demo``; the rest as in the file."""
    grpc_config = {"hellos": HELLOS, "file": {"file_demo": {"type": "local", "metadata": {}}}}
    return {"servers": [_server([_grpc_listener(address, grpc_config)], routers=False)],
            "pprof": {"debug": True, "port_value": pprof_port}, **_xds()}


# ---- pylotto run ---------------------------------------------------------------------------


@contextmanager
def layotto_run(workdir: Path, config: dict[str, Any], target: str,
                args: Sequence[str] = ()) -> Iterator[Path]:
    """``pylotto run -c config.json [args]`` in ``workdir``; ready when its gRPC API at
    ``target`` answers. Yields the log file (stdout and stderr); on exit SIGTERM, and a clean
    exit is asserted."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.json"
    path.write_text(json.dumps(config, indent=2))
    log_path = workdir / "pylotto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pylotto", "run", "-c", str(path),
             "--data-dir", str(workdir / "data"), *args],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_ready(process, target, log_path)
        yield log_path
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, log_path.read_text(errors="replace")


def _wait_ready(process: subprocess.Popen[bytes], target: str, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    with grpc.insecure_channel(target) as channel:
        ready = grpc.channel_ready_future(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"pylotto exited with {process.returncode}:\n"
                                   + log_path.read_text(errors="replace"))
            try:
                ready.result(timeout=0.2)
                return
            except grpc.FutureTimeoutError:
                continue
    raise TimeoutError("pylotto not ready:\n" + log_path.read_text(errors="replace"))


# ---- Go's fmt, as the demo clients print ---------------------------------------------------


def go_map(values: Mapping[str, str] | None) -> str:
    """``%v`` of a Go ``map[string]string``: ``map[k1:v1 k2:v2]``, keys sorted."""
    return "map[" + " ".join(f"{k}:{v}" for k, v in sorted((values or {}).items())) + "]"


def _go_quote(value: str | bytes) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _go_scalar(field: FieldDescriptor, value: Any) -> str:
    if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return _go_quote(value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    if field.type == FieldDescriptor.TYPE_ENUM:
        return str(field.enum_type.values_by_number[value].name)
    return str(value)


def go_proto(message: Message, *, legacy: bool = False) -> str:
    """``fmt.Println`` of a generated Go message: protobuf-go's compact text,
    ``name:"v" sub:{k:1}`` (``legacy``: golang/protobuf's older ``sub:<k:1 >``, which some
    quickstarts show). Fields in declaration order, map entries sorted by key."""
    opening, closing = ("<", " >") if legacy else ("{", "}")

    def nested(value: Any, field: FieldDescriptor) -> str:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return opening + go_proto(value, legacy=legacy) + closing
        return _go_scalar(field, value)

    parts: list[str] = []
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            for key in sorted(value):
                parts.append(f"{field.name}:{opening}key:{_go_scalar(key_field, key)} "
                             f"value:{nested(value[key], value_field)}{closing}")
        elif field.is_repeated:
            parts.extend(f"{field.name}:{nested(item, field)}" for item in value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if message.HasField(field.name):
                parts.append(f"{field.name}:{nested(value, field)}")
        elif value != field.default_value:
            parts.append(f"{field.name}:{_go_scalar(field, value)}")
    return " ".join(parts)


SECRETS_AT_F9681450 = {"db-user-pass": {"username": "devuser", "password": "redis123"},
                       "redisPassword": "redis123"}
"""The same file at f9681450 (the secret_ref quickstart's Redis password is in it)."""


Stub = runtime_pb2_grpc.RuntimeStub
LAST_WRITE = runtime_pb2.StateOptions.CONCURRENCY_LAST_WRITE
STRONG = runtime_pb2.StateOptions.CONSISTENCY_STRONG


def shown_lines(text: str) -> list[str]:
    """A shown output block as lines (trailing blanks, which the docs keep or drop at random,
    do not count)."""
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def printed_lines(out: list[str]) -> list[str]:
    return [line.rstrip() for line in out]
