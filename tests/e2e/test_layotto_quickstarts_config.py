"""Layotto's quickstarts, second part (configuration, secrets, files, actuator, unix socket,
flow control): how they are replayed is said in test_layotto_quickstarts.py."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pylotto.proto.layotto import (
    runtime_pb2,
)
from tests.e2e.layotto_quickstart import (
    SECRETS_AT_F9681450,
    Stub,
    config_file_on_local,
    config_standalone,
    config_uds,
    go_map,
    go_proto,
    layotto_run,
    printed_lines,
    runtime_config,
    shown_lines,
)
from tests.support.ports import free_port
from tests.support.private_servers import private_etcd

# ---- configuration: start/configuration/start.md, demo/configuration/common ----------------


def _go_configuration_item(item: runtime_pb2.ConfigurationItem) -> str:
    """``%+v`` of the Go SDK's ``*ConfigurationItem``."""
    return (f"&{{Key:{item.key} Content:{item.content} Group:{item.group} Label:{item.label} "
            f"Tags:{go_map(item.tags)} Metadata:{go_map(item.metadata)}}}")


def _configuration_client(stub: Stub, store: str) -> tuple[list[str], list[str]]:
    """demo/configuration/common/client.go in its default ``raw`` mode: save key1 and haha
    (with tags), sleep 2 s, get, delete, sleep 2 s, get; then one SubscribeConfiguration
    stream sending two requests (keys haha+key1, then heihei) while another goroutine saves
    heihei = heihei1..heihei4 once a second; the stream is read until heihei4. Returns the
    lines before the subscription and the subscription's lines."""
    appid, group = "testApplication_yang", "application"
    out: list[str] = []
    stub.SaveConfiguration(runtime_pb2.SaveConfigurationRequest(store_name=store, app_id=appid,
                                                                items=[
        runtime_pb2.ConfigurationItem(group=group, label="prod", key="key1", content="value1",
                                      tags={"release": "1.0.0", "feature": "print"}),
        runtime_pb2.ConfigurationItem(group=group, label="prod", key="haha", content="heihei",
                                      tags={"release": "1.0.0", "feature": "haha"})]),
        timeout=10)
    out.append("save key success")

    def get() -> None:
        reply = stub.GetConfiguration(runtime_pb2.GetConfigurationRequest(
            store_name=store, app_id=appid, group=group, label="prod", keys=["key1", "haha"]),
            timeout=10)
        out.extend(f"get configuration after save, {_go_configuration_item(item)} "
                   for item in reply.items)

    time.sleep(2)
    get()
    stub.DeleteConfiguration(runtime_pb2.DeleteConfigurationRequest(
        store_name=store, app_id=appid, group=group, label="prod", keys=["key1", "haha"]),
        timeout=10)
    out.append("delete keys success")
    time.sleep(2)
    get()

    subscribed: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def requests() -> Iterator[runtime_pb2.SubscribeConfigurationRequest]:
        yield runtime_pb2.SubscribeConfigurationRequest(
            store_name=store, group=group, label="prod", app_id=appid, keys=["haha", "key1"])
        yield runtime_pb2.SubscribeConfigurationRequest(
            store_name=store, group=group, label="prod", app_id=appid, keys=["heihei"])
        done.wait(60)  # the Go client never half-closes the stream

    def writes() -> None:
        for idx in range(1, 5):
            time.sleep(1)
            with lock:
                subscribed.append("write start")
            stub.SaveConfiguration(runtime_pb2.SaveConfigurationRequest(
                store_name=store, app_id=appid, items=[runtime_pb2.ConfigurationItem(
                    group=group, label="prod", key="heihei", content=f"heihei{idx}")]),
                timeout=10)

    stream = stub.SubscribeConfiguration(requests())
    writer = threading.Thread(target=writes)
    writer.start()
    try:
        for data in stream:
            with lock:
                subscribed.append(f"receive subscribe resp {go_proto(data, legacy=True)}")
            if data.items[0].content == "heihei4":
                break
    finally:
        done.set()
        stream.cancel()
        writer.join()
    return out, subscribed


def test_configuration_on_etcd(tmp_path: Path) -> None:
    """etcd, ``layotto start -c configs/runtime_config.json``, ``./client -s config_demo``.

    The page's get lines are printed as shown. Its one subscription line,
    ``... app_id:"apollo" items:<key:"heihei" content:"heihei1" ... tags:<key:"feature"
    value:"haha" > tags:<key:"release" value:"16" > >``, is the output of an older demo
    client (one on Apollo, whose writes carried tags); the client at f9681450 writes heihei1
    to heihei4 without tags under app id testApplication_yang and reads until heihei4, so
    the replay compares with those four lines in the page's format.

    The get lines show the tags as saved, as pylotto keeps them. Layotto's own etcd store at
    f9681450 would print ``Tags:map[1.0.0:value1 print:value1]``: it writes each tag as a key
    named by the tag's value holding the item's content, so the tag names are lost."""
    with private_etcd(tmp_path / "etcd") as etcd_port:
        address = f"127.0.0.1:{free_port()}"
        config = runtime_config(address, etcd_port, free_port())
        with layotto_run(tmp_path / "layotto", config, address), \
                grpc.insecure_channel(address) as channel:
            out, subscribed = _configuration_client(Stub(channel), "config_demo")
    assert printed_lines(out) == shown_lines("""
save key success
get configuration after save, &{Key:key1 Content:value1 Group:application Label:prod Tags:map[feature:print release:1.0.0] Metadata:map[]}
get configuration after save, &{Key:haha Content:heihei Group:application Label:prod Tags:map[feature:haha release:1.0.0] Metadata:map[]}
delete keys success
""")  # noqa: E501
    received = [line for line in subscribed if line != "write start"]
    assert received == [
        f'receive subscribe resp store_name:"config_demo" app_id:"testApplication_yang" '
        f'items:<key:"heihei" content:"heihei{idx}" group:"application" label:"prod" >'
        for idx in range(1, 5)]
    assert subscribed.count("write start") == 4
    assert subscribed[0] == "write start"  # as on the page: the write, then what it changed


# ---- secret: start/secret/start.md and secret_ref.md ---------------------------------------

SECRETS_AS_SHOWN = {"db-user-pass": {"username": "devuser", "password": "S!S*d$zDsb="}}
"""configs/secret/config_secret_local_file.json as it was when the secret quickstart's output
was taken (mosn/layotto c1fe556c)."""
def _secret_client(stub: Stub, store: str) -> list[str]:
    """demo/secret/common/client.go: GetSecret db-user-pass:password, then GetBulkSecret."""
    secret = stub.GetSecret(runtime_pb2.GetSecretRequest(
        store_name=store, key="db-user-pass:password"), timeout=10)
    assert secret.data, "no response data"
    bulk = stub.GetBulkSecret(runtime_pb2.GetBulkSecretRequest(store_name=store), timeout=10)
    assert bulk.data, "no response data"
    return [go_proto(secret), go_proto(bulk)]


@pytest.mark.parametrize("secrets", [SECRETS_AS_SHOWN, SECRETS_AT_F9681450],
                         ids=["file-as-shown", "file-at-f9681450"])
def test_secret_local_file(tmp_path: Path, secrets: dict[str, object]) -> None:
    """``layotto start -c configs/config_standalone.json``, ``./client -s secret_demo``."""
    secrets_file = tmp_path / "config_secret_local_file.json"
    secrets_file.write_text(json.dumps(secrets))
    address, actuator = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config = config_standalone(address, actuator, secrets_file, free_port(), free_port())
    with layotto_run(tmp_path / "layotto", config, address), \
            grpc.insecure_channel(address) as channel:
        out = _secret_client(Stub(channel), "secret_demo")
    shown = shown_lines("""
data:{key:"db-user-pass:password" value:"S!S*d$zDsb="}
data:{key:"db-user-pass:password" value:{secrets:{key:"db-user-pass:password" value:"S!S*d$zDsb="}}} data:{key:"db-user-pass:username" value:{secrets:{key:"db-user-pass:username" value:"devuser"}}}
""")  # noqa: E501
    if secrets is SECRETS_AT_F9681450:  # the same lines from the file the quickstart runs now
        shown = [line.replace("S!S*d$zDsb=", "redis123") for line in shown]
        shown[1] += ' data:{key:"redisPassword" value:{secrets:{key:"redisPassword" ' \
                    'value:"redis123"}}}'
    assert printed_lines(out) == shown


# ---- file: the local file store -----------------------------------------------------------


def _put(stub: Stub, store: str, name: str, data: bytes, metadata: dict[str, str]) -> None:
    stub.PutFile(iter([runtime_pb2.PutFileRequest(store_name=store, name=name, data=data,
                                                  metadata=metadata)]), timeout=10)


def _get(stub: Stub, store: str, name: str) -> bytes:
    return b"".join(chunk.data for chunk in stub.GetFile(
        runtime_pb2.GetFileRequest(store_name=store, name=name), timeout=10))


def test_file_local(tmp_path: Path) -> None:
    """The local file store (``sdk_reference/go/start.md`` "Experience the GRPC interface"):
    ``layotto start -c configs/config_standalone.json``, ``demo/file/local ./client -s
    file_demo``: PutFile with FileMode/FileFlag, GetFile, compare."""
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps(SECRETS_AT_F9681450))
    address, actuator = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config = config_standalone(address, actuator, secrets_file, free_port(), free_port())
    with layotto_run(tmp_path / "layotto", config, address), \
            grpc.insecure_channel(address) as channel:
        stub = Stub(channel)
        _put(stub, "file_demo", "file", b"value",
             {"FileMode": "0777", "FileFlag": str(os.O_CREAT | os.O_RDWR)})
        pic = _get(stub, "file_demo", "file")
    assert pic == b"value", f"the file is not the same as the value we put before. {pic!r}"
    # the client then prints "test file operate success"


def test_file_quickstart_steps_on_local(tmp_path: Path) -> None:
    """start/file/minio.md's steps (``demo/file/client.go``: put, get, list, stat, del) with
    ``configs/config_file.json``'s MinIO store replaced by the local one (no MinIO server
    runs here). Its ``bucket`` step calls MinIO's own SDK, not Layotto, and has no
    counterpart; the page shows no output. What the client prints is asserted."""
    address = f"127.0.0.1:{free_port()}"
    with layotto_run(tmp_path / "layotto", config_file_on_local(address, free_port()), address), \
            grpc.insecure_channel(address) as channel:
        stub, store, meta = Stub(channel), "file_demo", {"storageType": "Standard"}
        name = "test/hello/layotto.txt"
        _put(stub, store, name, b"hello layotto", meta)
        assert _get(stub, store, name) == b"hello layotto"  # "GetFile successfully. Result:"
        listed = stub.ListFile(runtime_pb2.ListFileRequest(
            request=runtime_pb2.FileRequest(store_name=store, name="test/hello", metadata=meta),
            page_size=2), timeout=10)
        assert not listed.is_truncated  # one page, then "finish list"
        assert [f.file_name for f in listed.files] == ["layotto.txt"]
        stat = stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
            request=runtime_pb2.FileRequest(store_name=store, name=name, metadata=meta)),
            timeout=10)
        assert stat.size == len(b"hello layotto") and stat.last_modified
        stub.DelFile(runtime_pb2.DelFileRequest(
            request=runtime_pb2.FileRequest(store_name=store, name=name, metadata=meta)),
            timeout=10)  # "delete file success"
        with pytest.raises(grpc.RpcError) as gone:  # stat again: "file not exist"
            stub.GetFileMeta(runtime_pb2.GetFileMetaRequest(
                request=runtime_pb2.FileRequest(store_name=store, name=name, metadata=meta)),
                timeout=10)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


# ---- actuator: start/actuator/start.md -----------------------------------------------------


def test_actuator(tmp_path: Path) -> None:
    """``layotto start -c configs/config_standalone.json``, ``curl
    http://127.0.0.1:34999/actuator/health/liveness`` and ``/actuator/info``.

    The page's liveness lists an ``apollo`` component: config_standalone.json configured an
    Apollo store when the page was written; at f9681450 it has no component with a health
    indicator, so Layotto answers with ``runtime_startup`` alone, as pylotto does. Its
    ``/actuator/info`` names the product and version (``Layotto``, ``0.1.0``); pylotto's
    names itself."""
    secrets_file = tmp_path / "secrets.json"
    secrets_file.write_text(json.dumps(SECRETS_AT_F9681450))
    address, actuator = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config = config_standalone(address, actuator, secrets_file, free_port(), free_port())
    with layotto_run(tmp_path / "layotto", config, address):
        with urllib.request.urlopen(f"http://{actuator}/actuator/health/liveness",
                                    timeout=10) as resp:
            assert resp.status == 200
            liveness = json.loads(resp.read())
        with urllib.request.urlopen(f"http://{actuator}/actuator/info", timeout=10) as resp:
            info = json.loads(resp.read())
    assert liveness["status"] == "UP"
    assert list(liveness["components"]) == ["runtime_startup"]
    startup = liveness["components"]["runtime_startup"]
    assert startup["status"] == "UP" and startup["details"]["reason"] == ""
    assert info["app"]["name"] == "pylotto" and info["app"]["version"]


# ---- uds: start/uds/start.md, demo/uds -----------------------------------------------------


def test_uds(tmp_path: Path) -> None:
    """``layotto start -c configs/config_uds.json`` (the socket at the test's own path, not
    /tmp/client-proxy.sock), ``demo/uds ./client``: SayHello helloworld "eva" over the
    socket. The page shows the Java demo's line ``greeting, helloowold``; the Go client
    prints ``greeting, eva``."""
    socket = tmp_path / "client-proxy.sock"
    with layotto_run(tmp_path / "layotto", config_uds(socket), f"unix:{socket}"), \
            grpc.insecure_channel(f"unix:{socket}") as channel:
        hello = Stub(channel).SayHello(runtime_pb2.SayHelloRequest(
            service_name="helloworld", name="eva"), timeout=10)
    assert hello.hello == "greeting, eva", f"assertion failed! result is {hello.hello}"


# ---- flow control: start/stream_filter/flow_control.md, demo/flowcontrol -------------------


def _go_rpc_error(error: grpc.RpcError) -> str:
    """Go's ``status.Error`` text: ``rpc error: code = <Code> desc = <message>``."""
    code = "".join(part.capitalize() for part in error.code().name.split("_"))
    return f"rpc error: code = {code} desc = {error.details()}"


def test_flow_control(tmp_path: Path) -> None:
    """``layotto start -c configs/runtime_config.json`` (its flowControlFilter: 5 SayHello a
    second), ``demo/flowcontrol`` sends 10 SayHello: the page's screenshot shows 5
    ``get a message:  greeting`` then 5 ``get an error:  rpc error: code = Unknown desc =
    current request is limited`` — and so does pylotto: the rules read from a Layotto config
    refuse as MOSN's flow-control filter does."""
    with private_etcd(tmp_path / "etcd") as etcd_port:
        address = f"127.0.0.1:{free_port()}"
        config = runtime_config(address, etcd_port, free_port())
        with layotto_run(tmp_path / "layotto", config, address), \
                grpc.insecure_channel(address) as channel:
            stub = Stub(channel)
            time.sleep(1.1)  # a fresh one-second window whatever the readiness probe used
            out: list[str] = []
            for _ in range(10):
                try:
                    reply = stub.SayHello(runtime_pb2.SayHelloRequest(service_name="helloworld"),
                                          timeout=10)
                    out.append(f"get a message:  {reply.hello}")
                except grpc.RpcError as error:
                    out.append(f"get an error:  {_go_rpc_error(error)}")
    assert out[:5] == ["get a message:  greeting"] * 5
    assert out[5:] == ["get an error:  rpc error: code = Unknown desc = current request is "
                       "limited"] * 5
