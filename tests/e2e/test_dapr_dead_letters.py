"""Dead letters as Dapr sends them, seen by apps written for Dapr (dapr 1.19 SDK): a failed
delivery on a subscription with a dead-letter topic goes to that topic after the inbound
resiliency policy (none: one attempt); programmatic (gRPC ``dapr.ext.grpc.App``, HTTP
``/dapr/subscribe``), declarative and streaming (``DaprClient.subscribe``) subscriptions, over
Redis Streams (``pubsub.redis``)."""

from __future__ import annotations

import json
import threading
import time
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


def resources(tmp_path: Path, *extra: str, retries: int | None = None) -> Path:
    """A Dapr resources folder: a pubsub.redis component on a fresh consumer group, the
    ``extra`` manifests and, with ``retries``, an inbound retry policy for the pubsub."""
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
  - {{name: consumerID, value: "dlt-{uuid.uuid4().hex[:8]}"}}
""")
    if retries is not None:
        (folder / "resiliency.yaml").write_text(f"""\
apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata: {{name: inbound}}
spec:
  policies:
    retries:
      few: {{policy: constant, duration: 50ms, maxRetries: {retries}}}
  targets:
    components:
      {PUBSUB}:
        inbound: {{retry: few}}
""")
    for n, manifest in enumerate(extra):
        (folder / f"extra-{n}.yaml").write_text(manifest)
    return folder


@pytest.fixture
def topic() -> str:
    return f"orders-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def dapr_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Sidecar], None]:
    def point_at(car: Sidecar) -> None:
        monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
        monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
        monkeypatch.setenv("DAPR_HEALTH_TIMEOUT", "10")

    return point_at


def subscriptions(car: Sidecar) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{car.dapr_http_url}/v1.0/metadata", timeout=5) as resp:
        return len(json.loads(resp.read())["subscriptions"])


# ---- a gRPC app whose handler raises -----------------------------------------------------------


def test_grpc_app_failure_goes_to_the_dead_letter_topic_after_the_inbound_retries(
    tmp_path: Path, topic: str, dapr_env: Callable[[Sidecar], None]
) -> None:
    app, port = App(), free_port()
    calls: list[str] = []
    dead: list[dict[str, Any]] = []

    @app.subscribe(pubsub_name=PUBSUB, topic=topic, dead_letter_topic=f"{topic}-dead")
    def failing(event: v1.Event) -> TopicEventResponse:
        calls.append(event.id)
        raise RuntimeError("cannot handle it")

    @app.subscribe(pubsub_name=PUBSUB, topic=f"{topic}-dead")
    def dead_letters(event: v1.Event) -> TopicEventResponse:
        dead.append({"id": event.id, "data": event.Data(),
                     "topic": event.extensions.get("topic") if event.extensions else None})
        return TopicEventResponse("success")

    threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True).start()
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "dltgrpc", "port": port, "protocol": "grpc"},
                  extra_args=["--resources-path", str(resources(tmp_path, retries=2))]).start()
    try:
        dapr_env(car)
        wait_for(lambda: subscriptions(car) == 2)
        with DaprClient() as client:
            client.publish_event(PUBSUB, topic, json.dumps({"orderId": 1}),
                                 data_content_type="application/json")
        wait_for(lambda: bool(dead))
        time.sleep(0.5)
        assert len(calls) == 3, "one attempt and the two retries of the inbound policy"
        assert len(set(calls)) == 1 and dead[0]["id"] == calls[0], "the message is unchanged"
        assert json.loads(dead[0]["data"]) == {"orderId": 1}
        assert "sent to dead-letter topic" in car.logs()
    finally:
        car.stop()
        app.stop()


# ---- an HTTP app answering RETRY, declarative subscription -------------------------------------


def test_http_app_retry_goes_to_the_dead_letter_topic_declaratively(
    tmp_path: Path, topic: str, dapr_env: Callable[[Sidecar], None]
) -> None:
    """The dead letter is the message as received (daprd's sendToDeadLetter publishes its
    data, its metadata with ``pubsubName``, and the content type the broker gave, which Redis
    gives none): the dead-letter subscriber gets the original CloudEvent, the publisher's
    metadata and ``pubsubName`` as headers."""
    received: dict[str, list[dict[str, Any]]] = {"orders": [], "dead": []}
    headers: dict[str, list[dict[str, str]]] = {"orders": [], "dead": []}

    class Handler(JsonHandler):
        def do_GET(self) -> None:
            self.reply([], 200) if self.path == "/dapr/subscribe" else self.reply({}, 404)

        def do_POST(self) -> None:
            body = self.read_json()
            route = self.path.strip("/")
            headers[route].append({k.lower(): v for k, v in self.headers.items()})
            received[route].append(body)
            self.reply({"status": "RETRY" if route == "orders" else "SUCCESS"})

    declared = f"""\
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {{name: orders}}
spec:
  pubsubname: {PUBSUB}
  topic: {topic}
  routes: {{default: /orders}}
  deadLetterTopic: {topic}-dead
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {{name: dead}}
spec:
  pubsubname: {PUBSUB}
  topic: {topic}-dead
  routes: {{default: /dead}}
"""
    server = serve(Handler)
    car = Sidecar(tmp_path / "car", components={},
                  app={"app_id": "dlthttp", "port": server.server_address[1]},
                  extra_args=["--resources-path", str(resources(tmp_path, declared))]).start()
    try:
        dapr_env(car)
        wait_for(lambda: subscriptions(car) == 2)
        with DaprClient() as client:
            client.publish_event(PUBSUB, topic, "retry me", data_content_type="text/plain",
                                 publish_metadata={"tenant": "acme"})
        wait_for(lambda: bool(received["dead"]))
        time.sleep(0.5)
        assert len(received["orders"]) == 1, "no inbound policy: one attempt"
        letter = received["dead"][0]
        assert letter["id"] == received["orders"][0]["id"] and letter["data"] == "retry me"
        assert letter["topic"] == topic, "the dead letter is the original CloudEvent"
        assert letter["datacontenttype"] == "text/plain"
        dead_headers = headers["dead"][0]
        assert dead_headers["content-type"] == "application/cloudevents+json"
        assert (dead_headers["tenant"], dead_headers["pubsubname"]) == ("acme", PUBSUB)
        assert dead_headers["tenant"] == headers["orders"][0]["tenant"]
    finally:
        car.stop()
        server.shutdown()


# ---- a streaming subscription (SubscribeTopicEvents) --------------------------------------------


def test_streaming_subscription_retry_goes_to_its_dead_letter_topic(
    tmp_path: Path, topic: str, dapr_env: Callable[[Sidecar], None]
) -> None:
    car = Sidecar(tmp_path / "car", components={},
                  extra_args=["--resources-path", str(resources(tmp_path))]).start()
    try:
        dapr_env(car)
        with DaprClient() as client:
            main = client.subscribe(PUBSUB, topic, dead_letter_topic=f"{topic}-dead")
            dead = client.subscribe(PUBSUB, f"{topic}-dead")
            try:
                client.publish_event(PUBSUB, topic, json.dumps({"n": 7}),
                                     data_content_type="application/json")
                message = main.next_message()
                assert message is not None and message.data() == {"n": 7}
                main.respond_retry(message)
                letter = dead.next_message()
                assert letter is not None and letter.id() == message.id()
                assert letter.data() == {"n": 7}
                dead.respond_success(letter)
            finally:
                main.close()
                dead.close()
    finally:
        car.stop()

