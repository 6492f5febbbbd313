"""Input bindings end to end: a real ``pylotto run`` firing ``bindings.cron`` to an HTTP app
(``OPTIONS`` probe, ``POST /<name>`` or its ``route``, an app answering 500) and to a gRPC app
written with the Dapr Python SDK (``dapr.ext.grpc`` ``@app.binding``)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from threading import Lock
from typing import Any

import pytest

from tests.e2e.sidecar import Sidecar, free_port
from tests.support.http_app import JsonHandler, serve

pytestmark = pytest.mark.timeout(120)


def wait_for(check: Callable[[], bool], within: float = 20) -> None:
    deadline = time.time() + within
    while not check():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


class CronApp(JsonHandler):
    """Listens on /tick, /routed/path and /broken (which answers 500); not on /unheard."""

    LISTENS = ("/tick", "/routed/path", "/broken")

    def do_OPTIONS(self) -> None:
        self.server.probed[self.path] += 1  # type: ignore[attr-defined]
        self.reply({}, 200 if self.path in self.LISTENS else 404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.got[self.path] += 1  # type: ignore[attr-defined]
            self.server.last[self.path] = (dict(self.headers), body)  # type: ignore[attr-defined]
        self.reply({"error": "no"}, 500 if self.path == "/broken" else 200)


def cron(schedule: str, **extra: str) -> dict[str, Any]:
    return {"type": "bindings.cron", "metadata": {"schedule": schedule, **extra}}


def metadata(car: Sidecar) -> dict[str, Any]:
    with urllib.request.urlopen(car.dapr_http_url + "/v1.0/metadata", timeout=10) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


def test_cron_events_reach_an_http_app(tmp_path: Path) -> None:
    app = serve(CronApp)
    app.got, app.last, app.probed, app.lock = Counter(), {}, Counter(), Lock()  # type: ignore[attr-defined]
    components = {"bindings": {
        "tick": cron("@every 1s"),
        "routing": cron("* * * * * *", route="/routed/path"),
        "broken": cron("@every 1s", direction="input"),
        "unheard": cron("@every 1s"),
    }}
    car = Sidecar(tmp_path, components=components,
                  app={"app_id": "cronapp", "port": app.server_address[1]}).start()
    try:
        started = time.time()
        wait_for(lambda: min(app.got[p] for p in ("/tick", "/routed/path", "/broken")) >= 3)
        elapsed = time.time() - started
        with app.lock:  # type: ignore[attr-defined]
            ticks = app.got["/tick"]  # type: ignore[attr-defined]
        # @every 1s: about one event a second (generous bounds for a loaded machine)
        assert ticks <= elapsed + 2
        headers, body = app.last["/tick"]  # type: ignore[attr-defined]
        assert body == b""
        assert headers["Content-Type"] == "application/json"
        assert headers["readTimeUTC"].endswith(" +0000 UTC")
        assert headers["timeZone"]
        assert app.got["/unheard"] == 0  # type: ignore[attr-defined]
        assert app.probed["/unheard"] >= 1  # type: ignore[attr-defined]
        assert app.probed["/broken"] == 0  # type: ignore[attr-defined]  # direction: input
        # the app's 500 is logged (once while it goes on), and the schedule goes on
        wait_for(lambda: "input binding broken: the app failed an event" in car.logs())
        count = app.got["/broken"]  # type: ignore[attr-defined]
        wait_for(lambda: app.got["/broken"] >= count + 2)  # type: ignore[attr-defined]
        listed = {c["name"]: c for c in metadata(car)["components"]}
        assert listed["tick"]["type"] == "bindings.cron"
        assert listed["tick"]["capabilities"] == ["INPUT_BINDING"]
    finally:
        car.stop()
        app.shutdown()
    assert car.logs().count("input binding broken: the app failed an event") == 1


def test_cron_events_reach_a_grpc_app_written_with_the_dapr_sdk(tmp_path: Path) -> None:
    from dapr.ext.grpc import App, BindingRequest

    port = free_port()
    app = App()
    got: list[dict[str, str]] = []
    failed = Counter[str]()

    @app.binding("nightly")
    def nightly(request: BindingRequest) -> None:
        got.append(dict(request.binding_metadata))

    @app.binding("grumpy")
    def grumpy(request: BindingRequest) -> None:
        failed["grumpy"] += 1
        raise RuntimeError("not today")

    threading.Thread(target=app.run, args=(port, "127.0.0.1"), daemon=True).start()
    components = {"bindings": {"nightly": cron("@every 1s"), "grumpy": cron("@every 1s"),
                               "ignored": cron("@every 1s")}}
    car = Sidecar(tmp_path, components=components,
                  app={"app_id": "grpccron", "port": port, "protocol": "grpc"}).start()
    try:
        started = time.time()
        wait_for(lambda: len(got) >= 3 and failed["grumpy"] >= 2)
        assert len(got) <= time.time() - started + 2
        assert got[0]["readTimeUTC"].endswith(" +0000 UTC")
        assert "timeZone" in got[0]
        wait_for(lambda: "input binding grumpy: the app failed an event" in car.logs())
        assert "app has not subscribed to binding ignored." in car.logs()
    finally:
        car.stop()
        app.stop()


def test_a_grpc_apps_answer_goes_on_to_the_output_bindings_it_names(tmp_path: Path) -> None:
    """``BindingEventResponse.to``: the answer's data, as JSON, sent to an ``http`` output
    binding with operation ``create`` (a POST)."""
    from concurrent import futures

    import grpc
    from dapr.proto.runtime.v1 import appcallback_pb2, appcallback_pb2_grpc

    class Forwarder(appcallback_pb2_grpc.AppCallbackServicer):  # type: ignore[misc]
        def ListInputBindings(self, request: Any, context: Any) -> Any:
            return appcallback_pb2.ListInputBindingsResponse(bindings=["tick"])

        def OnBindingEvent(self, request: Any, context: Any) -> Any:
            return appcallback_pb2.BindingEventResponse(
                to=["out"], data=b'{"b": 1, "a": [true]}',
                concurrency=appcallback_pb2.BindingEventResponse.PARALLEL)

    class Sink(JsonHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with self.server.lock:  # type: ignore[attr-defined]
                self.server.bodies.append(body)  # type: ignore[attr-defined]
            self.reply({})

    sink = serve(Sink)
    sink.bodies, sink.lock = [], Lock()  # type: ignore[attr-defined]
    port = free_port()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    appcallback_pb2_grpc.add_AppCallbackServicer_to_server(Forwarder(), server)  # type: ignore[no-untyped-call]
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    components = {"bindings": {
        "tick": cron("@every 1s"),
        "out": {"type": "bindings.http", "metadata": {
            "url": f"http://127.0.0.1:{sink.server_address[1]}/sink", "direction": "output"}},
    }}
    car = Sidecar(tmp_path, components=components,
                  app={"app_id": "forwarder", "port": port, "protocol": "grpc"}).start()
    try:
        wait_for(lambda: len(sink.bodies) >= 2)  # type: ignore[attr-defined]
        assert sink.bodies[0] == b'{"a":[true],"b":1}'  # type: ignore[attr-defined]
        listed = {c["name"]: c for c in metadata(car)["components"]}
        assert listed["out"]["capabilities"] == ["OUTPUT_BINDING"]
    finally:
        car.stop()
        server.stop(0)
        sink.shutdown()
