"""The Python SDK (sync Client, AsyncClient, App) against the real sidecar: every method."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from pylotto.client import (
    App,
    AsyncClient,
    Client,
    ClientError,
    Concurrency,
    ConfigurationItem,
    EventStatus,
    LockStatus,
    StateItem,
    TopicEvent,
    TransactionOperation,
)
from tests.e2e.sidecar import Sidecar, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def full_sidecar(tmp_path_factory: pytest.TempPathFactory, echo_port: int) -> Iterator[Sidecar]:
    """Embedded components plus an http binding, a secrets file and an app on the echo server."""
    workdir = tmp_path_factory.mktemp("sdk")
    secrets = workdir / "secrets.json"
    secrets.write_text(json.dumps({"db": {"password": "s3cret"}, "token": "t"}))
    car = Sidecar(workdir, app={"app_id": "sdkapp", "port": echo_port})
    car.write_config()  # embedded default components, then extend them
    import yaml

    body = yaml.safe_load(car.config_path.read_text())
    body["components"]["bindings"] = {
        "echo": {"type": "http", "metadata": {"url": f"http://127.0.0.1:{echo_port}/hook"}}}
    body["components"]["secretstores"]["files"] = {
        "type": "local.file", "metadata": {"secretsFile": str(secrets)}}
    car.components = body["components"]
    car.start()
    yield car
    car.stop()


def test_sync_client_every_unary_method(full_sidecar: Sidecar) -> None:
    with Client(full_sidecar.grpc_address) as c:
        assert c.say_hello("quick_start_demo", "sdk") == "greeting, sdk"
        # state
        c.save_state("sqlite", "k1", b"v1")
        got = c.get_state("sqlite", "k1")
        assert got.value == b"v1" and got.etag
        c.save_state("sqlite", "k1", "v2", etag=got.etag)
        with pytest.raises(ClientError) as info:
            c.save_state("sqlite", "k1", "v3", etag=got.etag)
        assert info.value.code == grpc.StatusCode.ABORTED
        c.save_bulk_state("sqlite", [StateItem("k2", b"2"), StateItem("k3", b"3")])
        bulk = {i.key: i.value for i in c.get_bulk_state("sqlite", ["k1", "k2", "k3", "nope"])}
        assert bulk == {"k1": b"v2", "k2": b"2", "k3": b"3", "nope": b""}
        c.execute_state_transaction("sqlite", [TransactionOperation.upsert("k4", {"n": 4}),
                                               TransactionOperation.delete("k3")])
        assert json.loads(c.get_state("sqlite", "k4").value) == {"n": 4}
        assert c.get_state("sqlite", "k3").value == b""
        c.delete_state("sqlite", "k4", concurrency=Concurrency.LAST_WRITE)
        c.delete_bulk_state("sqlite", ["k1", StateItem("k2")])
        assert [i.value for i in c.get_bulk_state("sqlite", ["k1", "k2"])] == [b"", b""]
        # lock
        assert c.try_lock("in-memory", "res", "me", 10) is True
        assert c.try_lock("in-memory", "res", "you", 10) is False
        assert c.lock_keep_alive("in-memory", "res", "me", 10) == LockStatus.SUCCESS
        assert c.unlock("in-memory", "res", "you") == LockStatus.LOCK_BELONG_TO_OTHERS
        assert c.unlock("in-memory", "res", "me") == LockStatus.SUCCESS
        assert c.unlock("in-memory", "res", "me") == LockStatus.LOCK_UNEXIST
        # sequencer
        first = c.get_next_id("sqlite", "orders", strong=True)
        assert c.get_next_id("sqlite", "orders", strong=True) == first + 1
        assert c.get_next_id("in-memory", "orders") >= 1
        # configuration
        c.save_configuration("in-memory", [ConfigurationItem("color", "blue", tags={"t": "1"})])
        [item] = c.get_configuration("in-memory", ["color"])
        assert (item.key, item.content, dict(item.tags)) == ("color", "blue", {"t": "1"})
        c.delete_configuration("in-memory", ["color"])
        assert c.get_configuration("in-memory", ["color"]) == []
        # files
        big = bytes(range(256)) * 1200  # several chunks
        c.put_file("local", "dir/a.bin", big)
        assert c.get_file("local", "dir/a.bin") == big
        assert b"".join(c.iter_file("local", "dir/a.bin")) == big
        assert c.get_file_meta("local", "dir/a.bin").size == len(big)
        listing = c.list_file("local", "dir")
        names = [f.name for f in listing.files]
        assert len(names) == 1 and names[0].endswith("a.bin") and not listing.is_truncated
        c.del_file("local", "dir/a.bin")
        with pytest.raises(ClientError) as info:
            c.get_file_meta("local", "dir/a.bin")
        assert info.value.code == grpc.StatusCode.NOT_FOUND
        # secrets
        assert c.get_secret("files", "db:password") == {"db:password": "s3cret"}
        assert c.get_bulk_secret("files")["token"] == {"token": "t"}
        # binding and invocation reach the echo server
        result = c.invoke_binding("echo", "post", b"ping")
        assert json.loads(result.data) == {"method": "POST", "path": "/hook", "body": "ping"}
        reply = c.invoke_service("sdkapp", "orders/1", b"hi", verb="PUT", querystring="a=1")
        assert json.loads(reply.data) == {"method": "PUT", "path": "/orders/1?a=1",
                                          "body": "hi"}
        with pytest.raises(ClientError) as info:
            c.get_state("no-such-store", "k")
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_sync_streams(full_sidecar: Sidecar) -> None:
    with Client(full_sidecar.grpc_address) as c, c.subscribe("in-memory", "sync-topic") as sub:
        c.publish_event("in-memory", "sync-topic", {"n": 1})
        for event in sub:
            assert event.json() == {"n": 1} and event.topic == "sync-topic"
            sub.ack(event)
            break
    with Client(full_sidecar.grpc_address) as c:
        changes = c.subscribe_configuration("in-memory", ["watched"])

        def save_later() -> None:
            with Client(full_sidecar.grpc_address) as other:
                import time

                time.sleep(0.5)
                other.save_configuration("in-memory", [ConfigurationItem("watched", "1")])

        threading.Thread(target=save_later).start()
        items = next(changes)
        assert [(i.key, i.content) for i in items] == [("watched", "1")]
        changes.close()  # type: ignore[attr-defined]


async def test_async_client(full_sidecar: Sidecar) -> None:
    async with AsyncClient(full_sidecar.grpc_address) as c:
        await c.wait_ready()
        assert await c.say_hello("quick_start_demo") == "greeting"
        await c.save_state("in-memory", "ak", b"av", ttl_seconds=60)
        assert (await c.get_state("in-memory", "ak")).value == b"av"
        async with c.subscribe("in-memory", "async-topic") as sub:
            await c.publish_event("in-memory", "async-topic", "first")
            event = await anext(sub)
            assert event.text() == "first"
            await sub.ack(event, EventStatus.RETRY)
            again = await asyncio.wait_for(anext(sub), 10)
            assert again.id == event.id
            await sub.ack(again)
        await c.put_file("local", "async.txt", b"")
        assert await c.get_file("local", "async.txt") == b""
        with pytest.raises(ClientError) as info:
            await c.try_lock("in-memory", "", "o", 1)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_app_callback_server_receives_published_events(
    start_sidecar: Callable[..., Sidecar],
) -> None:
    app = App()
    received: asyncio.Queue[TopicEvent] = asyncio.Queue()
    attempts: list[str] = []

    @app.subscribe(pubsub="in-memory", topic="orders")
    async def on_order(event: TopicEvent) -> EventStatus | None:
        attempts.append(event.id)
        if len(attempts) == 1:
            return EventStatus.RETRY
        await received.put(event)
        return None

    port = await app.start(port=free_port())
    try:
        car = await asyncio.to_thread(start_sidecar, None, {"app_id": "orders-app",
                                                            "grpc_callback_port": port})
        async with AsyncClient(car.grpc_address) as client:
            await client.publish_event("in-memory", "orders", {"id": 7})
            event = await asyncio.wait_for(received.get(), 15)
        assert event.json() == {"id": 7}
        assert event.source == "orders-app" and event.pubsub_name == "in-memory"
        assert attempts == [event.id, event.id]
    finally:
        await app.stop()


def test_quickstart_example_prints_what_the_readme_shows(sidecar: Sidecar) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True,
        text=True, timeout=60, env={"PYLOTTO_GRPC_ADDRESS": sidecar.grpc_address,
                                    "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["greeting, world", "b'hello'"]
    assert int(lines[2]) >= 1
