"""No acknowledged message is lost: 10,000 events through every real broker while the
subscriber app is killed (SIGKILL) and restarted, and while its sidecar gets SIGTERM and
restarts. Every event must reach the app at least once (counted by number); duplicates are
reported.

Two sidecars share the broker: the publisher's (up all along) and the subscriber's (the one
restarted), as two services would in production.

MQTT runs on a Mosquitto of its own, configured as at-least-once needs it: Mosquitto's default
``max_queued_messages 1000`` drops what an offline persistent session gets beyond that (a
sidecar restarting for 3 s on a loaded machine at 500 events/s lost ~600 of them; see
the mqtt row of docs/pubsub.md).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from dapr.proto.runtime.v1 import dapr_pb2_grpc, pubsub_pb2

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.servers import is_up, require

TOTAL = 10_000
BATCH = 50
APP = Path(__file__).parent / "apps" / "loss_app.py"
PREFIX = f"loss{uuid.uuid4().hex[:8]}"
QUICK = {"backOffPolicy": "constant", "backOffDuration": "200ms"}
BROKERS: dict[str, tuple[str, dict[str, str]]] = {
    "redis": ("redis", {"redisHost": "127.0.0.1:6379", "processingTimeout": "2s",
                        "redeliverInterval": "1s"}),
    "rabbitmq": ("rabbitmq", {"connectionString": "amqp://guest:guest@127.0.0.1:5672/"}),
    "mqtt": ("mqtt3", {"url": "tcp://127.0.0.1:1883"}),
    "nats": ("jetstream", {"natsURL": "nats://127.0.0.1:4222", "streamName": PREFIX,
                           "ackWait": "2s"}),
}
pytestmark = [pytest.mark.timeout(300), pytest.mark.e2e]


class App:
    def __init__(self, port: int, sink: Path, topic: str) -> None:
        self.port, self.sink, self.topic = port, sink, topic
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(APP), str(self.port), str(self.sink), "bus", self.topic])

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def received(self) -> list[int]:
        if not self.sink.exists():
            return []
        return [int(line) for line in self.sink.read_text().split()]


def subscribed(car: Sidecar) -> bool:
    with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata", timeout=5) as resp:
        return bool(json.load(resp)["subscriptions"])


def wait_for(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def publish_all(car: Sidecar, topic: str, published: list[int], errors: list[str]) -> None:
    stub = dapr_pb2_grpc.DaprStub(grpc.insecure_channel(car.dapr_grpc_address))
    for start in range(0, TOTAL, BATCH):
        entries = [pubsub_pb2.BulkPublishRequestEntry(
            entry_id=str(n), event=json.dumps({"n": n}).encode(),
            content_type="application/json") for n in range(start, start + BATCH)]
        try:  # daprd answers a batch with any refused entry INTERNAL, no failedEntries
            stub.BulkPublishEvent(pubsub_pb2.BulkPublishRequest(
                pubsub_name="bus", topic=topic, entries=entries), timeout=30)
        except grpc.RpcError as error:
            errors.append(f"batch at {start} failed: {error.code().name} {error.details()}")
        published.append(start + BATCH)
        time.sleep(0.1)  # ~500 events/s: the broker keeps a backlog, not an avalanche


@contextlib.contextmanager
def own_mosquitto(workdir: Path) -> Iterator[str]:
    """A Mosquitto on a free port that keeps every message of an offline session; its URL."""
    port = free_port()
    workdir.mkdir()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                      "max_queued_messages 0\npersistence false\n")
    process = subprocess.Popen(["mosquitto", "-c", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: is_up(port), 10, "mosquitto")
        yield f"tcp://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.parametrize("broker", list(BROKERS))
def test_no_message_is_lost_across_app_and_sidecar_restarts(
    broker: str, tmp_path: Path
) -> None:
    kind, metadata = BROKERS[broker]
    with contextlib.ExitStack() as stack:
        if broker == "mqtt":
            metadata = {**metadata, "url": stack.enter_context(own_mosquitto(tmp_path / "mqtt"))}
        else:
            require(broker)
        run_with_restarts(broker, kind, metadata, tmp_path)


def run_with_restarts(broker: str, kind: str, metadata: dict[str, str], tmp_path: Path) -> None:
    components = {"pubsub": {"bus": {"type": kind, "metadata": {
        **metadata, **QUICK, "maxConcurrentHandlers": "16"}}}}
    topic = f"{PREFIX}-{broker}"
    app = App(free_port(), tmp_path / "received.txt", topic)
    app.start()
    subscriber = Sidecar(tmp_path / "sub", components, {"app_id": "loss-sub", "port": app.port})
    publisher = Sidecar(tmp_path / "pub", components, {"app_id": "loss-pub"})
    subscriber.start()
    publisher.start()
    try:
        wait_for(lambda: subscribed(subscriber), 30, "the subscription")
        published: list[int] = [0]
        errors: list[str] = []
        sender = threading.Thread(target=publish_all, args=(publisher, topic, published, errors))
        sender.start()
        wait_for(lambda: published[-1] >= 3000 and len(app.received()) >= 2000, 60,
                 "3000 published")
        app.kill()
        time.sleep(0.5)
        app.start()
        wait_for(lambda: published[-1] >= 6000, 60, "6000 published")
        assert subscriber.stop(signal.SIGTERM) == 0
        subscriber.start()
        sender.join(120)
        assert not errors, errors
        wait_for(lambda: len(set(app.received())) >= TOTAL, 120, f"all {TOTAL} delivered")
        counts = Counter(app.received())
        duplicates = sum(c - 1 for c in counts.values())
        assert set(counts) == set(range(TOTAL))
        print(f"\n{broker}: {TOTAL} published, {len(counts)} delivered, "
              f"{duplicates} duplicate deliveries")
    finally:
        app.kill() if app.process and app.process.poll() is None else None
        subscriber.stop()
        publisher.stop()
