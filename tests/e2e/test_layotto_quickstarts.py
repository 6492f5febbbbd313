"""Layotto's quickstarts (mosn/layotto f9681450,
``docs/i18n/en-US/docusaurus-plugin-content-docs/current/start/``) replayed step by step against
``pylotto run -c <the quickstart's config>``.

Each test writes the quickstart's config (``tests/e2e/layotto_quickstart.py``: the same
sections, types and metadata keys; free ports, the test's own paths), starts the servers the
quickstart starts (a fresh Redis or etcd of the test's own, as its ``docker run`` gives), does
what the quickstart's Go client (``demo/<x>/``) does, call for call, printing what it prints
with Go's formatting, and compares that with the output the quickstart shows. Where the shown
output cannot be the same, the test says why next to the assertion (and
docs/configuration-file.md "Layotto's quickstarts" lists them).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
from google.protobuf import any_pb2, empty_pb2

from pylotto.proto.layotto import (
    appcallback_pb2,
    appcallback_pb2_grpc,
    runtime_pb2,
)
from tests.e2e.layotto_quickstart import (
    LAST_WRITE,
    SECRETS_AT_F9681450,
    STRONG,
    Stub,
    config_hello,
    config_redis,
    config_ref_example,
    go_map,
    go_proto,
    layotto_run,
    printed_lines,
    rpc_http_example,
    runtime_config,
    shown_lines,
)
from tests.support.ports import free_port
from tests.support.private_servers import private_etcd, private_redis

# ---- hello: sdk_reference/go/start.md, demo/hello/common -----------------------------------


def test_hello_go_sdk_start(tmp_path: Path) -> None:
    """The hello API quickstart: ``layotto start -c configs/config_hello.json`` (the config the
    page shows), then ``./client -s helloworld``. (``start/api_plugin/helloworld.md`` calls a
    ``helloworld.Greeter`` API compiled into the ``layotto_multiple_api`` binary, and
    ``start/rpc/helloworld.md`` invokes an HTTP echo server through MOSN's HTTP router; neither
    uses the hello API.)"""
    address = f"127.0.0.1:{free_port()}"
    with layotto_run(tmp_path, config_hello(address), address):
        out = [f"runtime client initializing for: {address}"]  # the Go SDK's NewClient prints
        with grpc.insecure_channel(address) as channel:
            res = Stub(channel).SayHello(runtime_pb2.SayHelloRequest(service_name="helloworld"),
                                         timeout=10)
        out.append(res.hello)
    assert printed_lines(out) == shown_lines(f"""
runtime client initializing for: {address}
greeting
""")


# ---- rpc hello world: start/rpc/helloworld.md, demo/rpc/http ------------------------------


class _EchoServer(BaseHTTPRequestHandler):
    """demo/rpc/http/echoserver/echoserver.go: answers (and prints) ``<method> <uri> \\n
    <body>``."""

    printed: list[str] = []

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        answer = f"{self.command} {self.path} \n {body}"
        self.printed.append(answer)
        encoded = answer.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    do_GET = do_POST = _echo

    def log_message(self, *args: object) -> None:
        pass


def test_rpc_hello_world(tmp_path: Path) -> None:
    """``layotto start -c demo/rpc/http/example.json``, the echo server on 8889,
    ``echoclient -d 'hello layotto'``: InvokeService id ``HelloService:1.0`` method ``/hello``;
    the page's screenshot shows ``GET /hello`` and `` hello layotto``.

    The config reaches the echo server through MOSN: its ``rpcs.mosn`` HTTP channel, an egress
    listener and a router matching header ``id: HelloService:1.0`` to a cluster. pylotto has
    none of those (it warns about each by name) and reaches an app over HTTP as its own app:
    the same route is given as ``--app-id HelloService:1.0 --app-port <echo port>``. The rest
    of the quickstart is unchanged, and so is what it prints."""
    echo = ThreadingHTTPServer(("127.0.0.1", 0), _EchoServer)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    _EchoServer.printed = []
    try:
        address = f"127.0.0.1:{free_port()}"
        config = rpc_http_example(address, f"127.0.0.1:{free_port()}", echo.server_address[1])
        with layotto_run(tmp_path / "layotto", config, address,
                         ["--app-id", "HelloService:1.0",
                          "--app-port", str(echo.server_address[1])]) as log, \
                grpc.insecure_channel(address) as channel:
            resp = Stub(channel).InvokeService(runtime_pb2.InvokeServiceRequest(
                id="HelloService:1.0", message=runtime_pb2.CommonInvokeRequest(
                    method="/hello", content_type="",
                    data=any_pb2.Any(value=b"hello layotto"))), timeout=10)
            logged = log.read_text(errors="replace")
    finally:
        echo.shutdown()
    assert resp.data.value.decode().split("\n") == ["GET /hello ", " hello layotto"]
    assert _EchoServer.printed == ["GET /hello \n hello layotto"]
    for section in ("rpcs", "cluster_manager", "egress_runtime_http"):
        assert section in logged, logged


# ---- state: start/state/start.md, demo/state/common ----------------------------------------


def _state_client(stub: Stub, store: str) -> list[str]:
    """demo/state/common/client.go: the Go SDK's SaveState (last-write, strong), GetState,
    SaveBulkState (etag "2", last-write), GetBulkState (parallelism 3), DeleteStateWithETag
    (the SDK's default options: last-write, strong)."""
    out = [f"Start testing {store}"]
    key1, key2, value = "key1", "key2", b"hello world"
    options = runtime_pb2.StateOptions(concurrency=LAST_WRITE, consistency=STRONG)
    stub.SaveState(runtime_pb2.SaveStateRequest(store_name=store, states=[
        runtime_pb2.StateItem(key=key1, value=value, options=options)]), timeout=10)
    out.append(f"SaveState succeeded.key:{key1} , value: {value.decode()} ")
    got = stub.GetState(runtime_pb2.GetStateRequest(store_name=store, key=key1,
                                                    consistency=STRONG), timeout=10)
    out.append(f"GetState succeeded.[key:{key1} etag:{got.etag}]: {got.data.decode()}")
    items = [runtime_pb2.StateItem(key=key, value=value, etag=runtime_pb2.Etag(value="2"),
                                   metadata={"some-key-for-component": "some-value"},
                                   options=options) for key in (key1, key2)]
    stub.SaveState(runtime_pb2.SaveStateRequest(store_name=store, states=items), timeout=10)
    for item in items:
        out.append(f"SaveBulkState succeeded.[key:{item.key} etag:{item.etag.value}]: "
                   f"{item.value.decode()}")
    bulk = stub.GetBulkState(runtime_pb2.GetBulkStateRequest(
        store_name=store, keys=[key1, key2, "key3", "key4", "key5"], parallelism=3), timeout=10)
    etags = {}
    for entry in bulk.items:
        out.append(f"GetBulkState succeeded.key:{entry.key} ,value:{entry.data.decode()} "
                   f",etag:{entry.etag} ,metadata:{go_map(entry.metadata)} ")
        etags[entry.key] = entry.etag
    for key in (key1, key2):
        stub.DeleteState(runtime_pb2.DeleteStateRequest(
            store_name=store, key=key, etag=runtime_pb2.Etag(value=etags[key]),
            options=options), timeout=10)
        out.append(f"DeleteState succeeded.key:{key}")
    return out


STATE_SHOWN = """
SaveState succeeded.key:key1 , value: hello world
GetState succeeded.[key:key1 etag:3]: hello world
SaveBulkState succeeded.[key:key1 etag:2]: hello world
SaveBulkState succeeded.[key:key2 etag:2]: hello world
GetBulkState succeeded.key:key1 ,value:hello world ,etag:4 ,metadata:map[]
GetBulkState succeeded.key:key4 ,value: ,etag: ,metadata:map[]
GetBulkState succeeded.key:key2 ,value:hello world ,etag:2 ,metadata:map[]
GetBulkState succeeded.key:key3 ,value: ,etag: ,metadata:map[]
GetBulkState succeeded.key:key5 ,value: ,etag: ,metadata:map[]
DeleteState succeeded.key:key1
DeleteState succeeded.key:key2
"""


def _bulk_in_request_order(lines: list[str]) -> list[str]:
    """The shown GetBulkState lines come in the order Layotto's parallel gets finished
    (key1, key4, key2, key3, key5); pylotto answers in the request's order."""
    bulk = sorted((line for line in lines if line.startswith("GetBulkState")),
                  key=lambda line: line.split("key:")[1].split(" ")[0])
    first = next(i for i, line in enumerate(lines) if line.startswith("GetBulkState"))
    rest = [line for line in lines if not line.startswith("GetBulkState")]
    return rest[:first] + bulk + rest[first:]


def test_state_on_redis(tmp_path: Path) -> None:
    """Redis (``docker run ... -p 6380:6379 redis``), ``layotto start -c
    configs/config_redis.json``, ``./client -s state_demo``.

    The etags shown (3, then 4 and 2) are those of a Redis that already held key1 at version
    2 and key2 at version 1 (components-contrib's Redis store counts each key's versions from
    1): on an empty Redis the same run prints 1, then 2 and 1. Both are replayed."""
    with private_redis(tmp_path / "redis") as redis_port:
        address, actuator = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        config = config_redis(address, actuator, redis_port, free_port())
        with layotto_run(tmp_path / "layotto", config, address), \
                grpc.insecure_channel(address) as channel:
            stub = Stub(channel)
            on_empty = _state_client(stub, "state_demo")
            assert on_empty[0] == "Start testing state_demo"  # printed; the page omits it
            shown_on_empty = (STATE_SHOWN.replace("etag:3]", "etag:1]")
                              .replace("key1 ,value:hello world ,etag:4", "key1 ,value:"
                                       "hello world ,etag:2")
                              .replace("key2 ,value:hello world ,etag:2", "key2 ,value:"
                                       "hello world ,etag:1"))
            assert printed_lines(on_empty[1:]) == _bulk_in_request_order(
                shown_lines(shown_on_empty))

            # what the page's Redis held: key1 written twice, key2 once (a run that stopped
            # before its deletes)
            for key in ("key1", "key1", "key2"):
                stub.SaveState(runtime_pb2.SaveStateRequest(store_name="state_demo", states=[
                    runtime_pb2.StateItem(key=key, value=b"earlier")]), timeout=10)
            again = _state_client(stub, "state_demo")
            assert printed_lines(again[1:]) == _bulk_in_request_order(shown_lines(STATE_SHOWN))


# ---- pub/sub: start/pubsub/start.md, demo/pubsub -------------------------------------------


class _Subscriber(appcallback_pb2_grpc.AppCallbackServicer):
    """demo/pubsub/server/appcallback/subscribe_server.go: subscribes ``hello`` and
    ``topic1`` and prints each event."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.out: list[str] = []
        self.received = threading.Condition()

    def ListTopicSubscriptions(self, request: empty_pb2.Empty, context: grpc.ServicerContext
                               ) -> appcallback_pb2.ListTopicSubscriptionsResponse:
        return appcallback_pb2.ListTopicSubscriptionsResponse(subscriptions=[
            appcallback_pb2.TopicSubscription(pubsub_name=self.store, topic="hello"),
            appcallback_pb2.TopicSubscription(pubsub_name=self.store, topic="topic1")])

    def OnTopicEvent(self, request: appcallback_pb2.TopicEventRequest,
                     context: grpc.ServicerContext) -> appcallback_pb2.TopicEventResponse:
        with self.received:
            self.out.append(f"Received a new event.Topic: {request.topic} , "
                            f"Data: {request.data.decode()} ")
            self.received.notify_all()
        return appcallback_pb2.TopicEventResponse()


def test_pubsub_on_redis(tmp_path: Path) -> None:
    """Step 1 the subscriber (``./subscriber -s pub_subs_demo``, port 9999: the config's
    ``grpc_callback_port``), step 2 Redis and ``layotto start -c configs/config_redis.json``,
    step 3 ``./publisher -s pub_subs_demo``, step 4 what the subscriber printed."""
    callback_port = free_port()
    subscriber = _Subscriber("pub_subs_demo")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    appcallback_pb2_grpc.add_AppCallbackServicer_to_server(subscriber, server)
    server.add_insecure_port(f"127.0.0.1:{callback_port}")
    server.start()
    subscriber.out.append(f"Start listening on port {callback_port} ...... ")
    try:
        with private_redis(tmp_path / "redis") as redis_port:
            address, actuator = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
            config = config_redis(address, actuator, redis_port, callback_port)
            with layotto_run(tmp_path / "layotto", config, address), \
                    grpc.insecure_channel(address) as channel:
                stub, published = Stub(channel), []
                for topic, value in (("hello", "world"), ("topic1", "value1")):
                    stub.PublishEvent(runtime_pb2.PublishEventRequest(
                        pubsub_name="pub_subs_demo", topic=topic, data=value.encode()),
                        timeout=10)
                    published.append(f"Published a new event.Topic: {topic} ,Data: {value} ")
                assert printed_lines(published) == shown_lines("""
Published a new event.Topic: hello ,Data: world
Published a new event.Topic: topic1 ,Data: value1
""")
                with subscriber.received:
                    assert subscriber.received.wait_for(lambda: len(subscriber.out) >= 3, 20)
                time.sleep(0.5)  # nothing else may arrive
    finally:
        server.stop(None)
    shown = shown_lines(f"""
Start listening on port {callback_port} ......
Received a new event.Topic: topic1 , Data: value1
Received a new event.Topic: hello , Data: world
""")
    # the two topics are delivered independently: the page shows topic1 first, either order
    # is the same run
    printed = printed_lines(subscriber.out)
    assert printed[0] == shown[0]
    assert sorted(printed[1:]) == sorted(shown[1:])


# ---- lock: start/lock/start.md, demo/lock/common -------------------------------------------


def _lock_client(stub: Stub, store: str) -> list[str]:
    """demo/lock/common/client.go: client1 locks (expire 1000), client2 fails (expire 10),
    client1 unlocks, client2 locks and unlocks; each client2 step in its own goroutine,
    waited for."""
    out: list[str] = []
    resource = "resource_a"

    def try_lock(owner: str, expire: int) -> bool:
        return bool(stub.TryLock(runtime_pb2.TryLockRequest(
            store_name=store, resource_id=resource, lock_owner=owner, expire=expire),
            timeout=10).success)

    def unlock(owner: str) -> int:
        return int(stub.Unlock(runtime_pb2.UnlockRequest(
            store_name=store, resource_id=resource, lock_owner=owner), timeout=10).status)

    def in_goroutine(step: object) -> None:
        thread = threading.Thread(target=step)  # type: ignore[arg-type]
        thread.start()
        thread.join()

    owner1 = str(uuid.uuid4())
    out.append("client1 prepare to tryLock...")
    assert try_lock(owner1, 1000), "TryLock failed"
    out.append(f"client1 got lock!ResourceId is {resource}")

    def client2_fails() -> None:
        out.append("client2 prepare to tryLock...")
        assert not try_lock(str(uuid.uuid4()), 10), "client2 got lock?!"
        out.append(f"client2 failed to get lock.ResourceId is {resource}")

    in_goroutine(client2_fails)
    out.append("client1 prepare to unlock...")
    assert unlock(owner1) == 0, "client1 failed to unlock!"
    out.append("client1 succeeded in unlocking")

    def client2_locks() -> None:
        out.append("client2 prepare to tryLock...")
        owner2 = str(uuid.uuid4())
        assert try_lock(owner2, 10), "client2 failed to get lock?!"
        out.append(f"client2 got lock.ResourceId is {resource}")
        assert unlock(owner2) == 0, "client2 failed to unlock!"
        out.append("client2 succeeded in unlocking")

    in_goroutine(client2_locks)
    out.append("Demo success!")
    return out


def test_lock_on_redis(tmp_path: Path) -> None:
    """Redis, ``layotto start -c configs/config_redis.json``, ``./client -s lock_demo``."""
    with private_redis(tmp_path / "redis") as redis_port:
        address, actuator = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        config = config_redis(address, actuator, redis_port, free_port())
        with layotto_run(tmp_path / "layotto", config, address), \
                grpc.insecure_channel(address) as channel:
            out = _lock_client(Stub(channel), "lock_demo")
    assert printed_lines(out) == shown_lines("""
client1 prepare to tryLock...
client1 got lock!ResourceId is resource_a
client2 prepare to tryLock...
client2 failed to get lock.ResourceId is resource_a
client1 prepare to unlock...
client1 succeeded in unlocking
client2 prepare to tryLock...
client2 got lock.ResourceId is resource_a
client2 succeeded in unlocking
Demo success!
""")


# ---- sequencer: start/sequencer/start.md, demo/sequencer/common ----------------------------


def _sequencer_client(stub: Stub, store: str) -> list[str]:
    """demo/sequencer/common/client.go: ten GetNextId of key666, each printed with %v."""
    key = "key666"
    out = [f"Try to get next id.Key:{key} "]
    for _ in range(10):
        reply = stub.GetNextId(runtime_pb2.GetNextIdRequest(store_name=store, key=key),
                               timeout=10)
        out.append(f"Next id:{go_proto(reply)} ")
    out.append("Demo success!")
    return out


SEQUENCER_SHOWN = """
Try to get next id.Key:key666
Next id:next_id:1
Next id:next_id:2
Next id:next_id:3
Next id:next_id:4
Next id:next_id:5
Next id:next_id:6
Next id:next_id:7
Next id:next_id:8
Next id:next_id:9
Next id:next_id:10
Demo success!
"""


def test_sequencer_on_etcd(tmp_path: Path) -> None:
    """etcd (``./etcd``), ``layotto start -c configs/runtime_config.json``,
    ``./client -s sequencer_demo``."""
    with private_etcd(tmp_path / "etcd") as etcd_port:
        address = f"127.0.0.1:{free_port()}"
        config = runtime_config(address, etcd_port, free_port())
        with layotto_run(tmp_path / "layotto", config, address), \
                grpc.insecure_channel(address) as channel:
            out = _sequencer_client(Stub(channel), "sequencer_demo")
    assert printed_lines(out) == shown_lines(SEQUENCER_SHOWN)


# ---- secret_ref: start/secret/secret_ref.md (the sequencer quickstart with an injected password)

def test_secret_ref_injects_the_redis_password(tmp_path: Path) -> None:
    """secret_ref.md: Redis with ``--requirepass redis123``, ``layotto start -c
    configs/config_ref_example.json`` (the sequencer's ``redisPassword`` injected from the
    local.file store), ``demo/sequencer/common ./client -s redis``."""
    secrets_file = tmp_path / "config_secret_local_file.json"
    secrets_file.write_text(json.dumps(SECRETS_AT_F9681450))
    with private_redis(tmp_path / "redis", password="redis123") as redis_port, \
            private_etcd(tmp_path / "etcd") as etcd_port:
        address, actuator = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        config = config_ref_example(address, actuator, etcd_port, redis_port, secrets_file,
                                    free_port())
        with layotto_run(tmp_path / "layotto", config, address), \
                grpc.insecure_channel(address) as channel:
            out = _sequencer_client(Stub(channel), "redis")
    assert printed_lines(out) == shown_lines(SEQUENCER_SHOWN)
