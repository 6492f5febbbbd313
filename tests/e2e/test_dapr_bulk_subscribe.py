"""Bulk subscribe as Dapr delivers it, to apps written for Dapr (dapr 1.19 SDK): events
published one by one reach the app together — Dapr's bulk envelope POSTed to an HTTP app's
route, ``OnBulkTopicEvent`` for a gRPC ``dapr.ext.grpc.App`` — and each entry's status is
honoured: SUCCESS settles it, DROP sends it to the dead-letter topic, RETRY has it delivered
again — or, on a subscription with a dead-letter topic and no inbound retry policy, sends it
there too. Over Redis Streams (``pubsub.redis``)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cloudevents.sdk.event import v1
from dapr.clients import DaprClient
from dapr.clients.grpc._response import TopicEventResponse
from dapr.ext.grpc import App

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.http_app import JsonHandler, serve

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
              pytest.mark.timeout(120)]
PUBSUB = "orderpubsub"


def wait_for(check: Callable[[], bool], within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def resources(tmp_path: Path, *extra: str) -> Path:
    folder = tmp_path / "resources"
    folder.mkdir()
    (folder / "pubsub.yaml").write_text(f"""\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: {PUBSUB}}}
spec:
  type: pubsub.redis
  version: v1
  metadata:
  - {{name: redisHost, value: "127.0.0.1:6379"}}
  - {{name: consumerID, value: "bulk-{uuid.uuid4().hex[:8]}"}}
  - {{name: backOffPolicy, value: constant}}
  - {{name: backOffDuration, value: 200ms}}
""")
    for n, manifest in enumerate(extra):
        (folder / f"extra-{n}.yaml").write_text(manifest)
    return folder


def subscriptions(car: Sidecar) -> int:
    with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata", timeout=5) as resp:
        return len(json.loads(resp.read())["subscriptions"])


@pytest.fixture
def topic() -> str:
    return f"orders-{uuid.uuid4().hex[:8]}"


def publish_all(car: Sidecar, topic: str, payloads: list[dict[str, Any]],
                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
    monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
    with DaprClient() as client:
        for payload in payloads:
            client.publish_event(PUBSUB, topic, json.dumps(payload),
                                 data_content_type="application/json")


def test_http_app_gets_the_bulk_envelope_and_its_statuses_are_honoured(
    tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    declared = [
        {"pubsubname": PUBSUB, "topic": topic, "route": "/bulk",
         "deadLetterTopic": f"{topic}-dead",
         "bulkSubscribe": {"enabled": True, "maxMessagesCount": 5,
                           "maxAwaitDurationMs": 500}},
        {"pubsubname": PUBSUB, "topic": f"{topic}-dead", "route": "/dead"},
    ]

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            self.reply(declared) if self.path == "/dapr/subscribe" else self.reply({}, 404)

        def do_POST(self) -> None:
            body = self.read_json()
            if self.path == "/dead":
                dead.append(body)
                self.reply({"status": "SUCCESS"})
                return
            assert self.headers["Content-Type"] == "application/json"
            calls.append(body)
            statuses = []
            for entry in body["entries"]:
                n = entry["event"]["data"]["n"]
                status = {2: "DROP", 3: "RETRY"}.get(n, "SUCCESS")
                statuses.append({"entryId": entry["entryId"], "status": status})
            self.reply({"statuses": statuses})

    server = serve(Handler)
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "bulkhttp", "port": server.server_address[1]},
                  extra_args=["--resources-path", str(resources(tmp_path))]).start()
    try:
        wait_for(lambda: subscriptions(car) == 2)
        publish_all(car, topic, [{"n": n} for n in range(5)], monkeypatch)
        wait_for(lambda: len(dead) == 2)
        time.sleep(0.5)
        first = calls[0]
        assert len(first["entries"]) == 5, "the five events arrive in one call"
        assert first["type"] == "com.dapr.event.sent.bulk"
        assert first["topic"] == topic and first["pubsubname"] == PUBSUB
        entry = first["entries"][0]
        assert set(entry) >= {"entryId", "event", "metadata", "contentType"}
        assert entry["contentType"] == "application/cloudevents+json"
        assert entry["event"]["specversion"] == "1.0" and entry["event"]["topic"] == topic
        assert [e["event"]["data"]["n"] for e in first["entries"]] == [0, 1, 2, 3, 4]
        assert len(calls) == 1, "a dead-letter topic and no inbound policy: no second try"
        assert sorted(d["data"]["n"] for d in dead) == [2, 3], "DROP and RETRY dead-lettered"
        assert {d["id"] for d in dead} == {e["event"]["id"] for e in first["entries"]
                                           if e["event"]["data"]["n"] in (2, 3)}
    finally:
        car.stop()
        server.shutdown()


def test_grpc_app_gets_on_bulk_topic_event_with_per_entry_statuses(
    tmp_path: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, port = App(), free_port()
    seen: list[int] = []
    lock = threading.Lock()

    @app.subscribe(pubsub_name=PUBSUB, topic=topic)
    def orders(event: v1.Event) -> TopicEventResponse:
        n = json.loads(event.Data())["n"]
        with lock:
            seen.append(n)
            first_time = seen.count(n) == 1
        return TopicEventResponse("retry" if n == 1 and first_time else "success")

    # what an app that asks for bulk delivery lists (the SDK's decorator has no such flag)
    listed = app._servicer._registered_topics[0]
    listed.bulk_subscribe.enabled = True
    listed.bulk_subscribe.max_messages_count = 10
    listed.bulk_subscribe.max_await_duration_ms = 500
    bulk_calls: list[int] = []
    original = app._servicer._handle_bulk_topic_event  # what OnBulkTopicEvent runs

    def counted(request: Any, context: Any) -> Any:
        bulk_calls.append(len(request.entries))
        return original(request, context)

    app._servicer._handle_bulk_topic_event = counted
    threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True).start()
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "bulkgrpc", "port": port, "protocol": "grpc"},
                  extra_args=["--resources-path", str(resources(tmp_path))]).start()
    try:
        wait_for(lambda: subscriptions(car) == 1)
        publish_all(car, topic, [{"n": n} for n in range(4)], monkeypatch)
        wait_for(lambda: sorted(seen) == [0, 1, 1, 2, 3])
        assert bulk_calls[0] == 4, "the four events arrive in one OnBulkTopicEvent"
        assert bulk_calls[1:] == [1], "the RETRY entry comes again, alone"
        time.sleep(0.5)
        assert sorted(seen) == [0, 1, 1, 2, 3]
    finally:
        car.stop()
        app.stop()
