"""The app side of actors (pylotto.appchannel.actors): an HTTP app's callbacks against a real
aiohttp app, and the stream host's id correlation and answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from dapr.actor.runtime.config import (
    ActorReentrancyConfig,
    ActorRuntimeConfig,
    ActorTypeConfig,
)
from dapr.proto.runtime.v1 import actors_pb2
from dapr.serializers import DefaultJSONSerializer

from pylotto.appchannel.actors import (
    HttpActorHost,
    StreamActorHost,
    initial_request_config,
    tick_body,
)
from pylotto.appchannel.http import HttpAppChannel
from pylotto.capabilities.actors.api import (
    ActorCall,
    ActorRef,
    EntityConfig,
    Reentrancy,
    Tick,
    TickKind,
)
from pylotto.core.errors import NotFound, Unavailable

ACTOR = ActorRef("DemoActor", "a 1")


class App:
    """An actor app's routes, recording what it was sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.config_status = 200
        sdk = ActorRuntimeConfig(
            actor_idle_timeout=timedelta(seconds=5), reentrancy=ActorReentrancyConfig(True, 8),
            actor_type_configs=[ActorTypeConfig("Other", actor_idle_timeout=timedelta(
                minutes=2))])
        sdk.update_entities(["DemoActor", "Other"])
        self.config = DefaultJSONSerializer().serialize(sdk.as_dict())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append((request.method, request.raw_path, dict(request.headers), body))
        path = request.path
        if path == "/dapr/config":
            return web.Response(status=self.config_status, body=self.config,
                                content_type="application/json")
        if path.endswith("/method/missing"):
            return web.Response(status=404, text="no route")
        if path.endswith("/method/fails"):
            return web.Response(status=500, text='{"message":"ValueError()"}')
        if path.endswith("/method/actorerror"):
            return web.Response(status=200, text="custom", headers={
                "X-Daprerrorresponseheader": "true", "X-App": "1"})
        if "/method/remind/" in path:
            return web.Response(status=200, headers={"X-Daprremindercancel": "true"})
        if "/method/timer/" in path:
            return web.Response(status=200)
        if request.method == "DELETE":
            if path.endswith("/refuses"):
                return web.Response(status=500, text="no")
            return web.Response(status=200, text="deactivated")
        return web.Response(status=200, body=b'{"ok":true}', content_type="application/json",
                            headers={"X-Answer": "yes"})


@pytest.fixture
async def app() -> AsyncIterator[tuple[App, HttpActorHost]]:
    state = App()
    web_app = web.Application()
    web_app.router.add_route("*", "/{tail:.*}", state.handle)
    server = TestServer(web_app, host="127.0.0.1")
    await server.start_server()
    channel = HttpAppChannel("127.0.0.1", server.port or 0)
    try:
        yield state, HttpActorHost(channel, "myapp")
    finally:
        await channel.close()
        await server.close()


async def test_hosted_types_come_from_the_sdks_dapr_config(app: tuple[App, HttpActorHost]
                                                           ) -> None:
    state, host = app
    types = await host.hosted()
    assert set(types) == {"DemoActor", "Other"}
    assert types["DemoActor"].idle_timeout == 5.0
    assert types["DemoActor"].reentrancy == Reentrancy(True, 8)
    assert types["Other"].idle_timeout == 120.0
    method, path, headers, _ = state.seen[-1]
    assert (method, path, headers["Dapr-App-Id"]) == ("GET", "/dapr/config", "myapp")


async def test_a_config_answering_other_than_200_hosts_no_types(
        app: tuple[App, HttpActorHost]) -> None:
    state, host = app
    state.config_status = 404
    assert await host.hosted() == {}


async def test_an_unreachable_app_is_unavailable() -> None:
    from tests.support.ports import free_port

    channel = HttpAppChannel("127.0.0.1", free_port())
    try:
        with pytest.raises(Unavailable):
            await HttpActorHost(channel, "myapp").hosted()
    finally:
        await channel.close()


async def test_a_method_is_put_with_the_callers_headers_and_the_reentrancy_id(
        app: tuple[App, HttpActorHost]) -> None:
    state, host = app
    answer = await host.invoke(ActorCall(
        ACTOR, "SetMyData", data=b'"x"', content_type="application/json",
        headers=(("X-Caller", "c"), ("Content-Length", "3"))), "rid-1")
    method, path, headers, body = state.seen[-1]
    assert (method, path, body) == ("PUT", "/actors/DemoActor/a%201/method/SetMyData", b'"x"')
    assert headers["X-Caller"] == "c" and headers["Dapr-Reentrancy-Id"] == "rid-1"
    assert headers["Content-Type"] == "application/json"
    assert (answer.status, answer.data, answer.actor_error) == (200, b'{"ok":true}', False)
    assert answer.content_type.startswith("application/json")
    assert ("X-Answer", "yes") in answer.headers
    assert not any(k.lower() == "content-length" for k, _ in answer.headers)


async def test_the_callers_query_string_reaches_the_app_as_daprd_passes_it(
        app: tuple[App, HttpActorHost]) -> None:
    state, host = app
    await host.invoke(ActorCall(ACTOR, "Get", query="page=2&q=a%20b"), None)
    assert state.seen[-1][1] == "/actors/DemoActor/a%201/method/Get?page=2&q=a%20b"


async def test_an_apps_404_is_method_not_found(app: tuple[App, HttpActorHost]) -> None:
    _, host = app
    with pytest.raises(NotFound, match="actor method not found: "
                                       "actors/DemoActor/a%201/method/missing") as caught:
        await host.invoke(ActorCall(ACTOR, "missing"), None)
    assert caught.value.where == "actors.invoke"


async def test_error_statuses_are_answers_and_the_error_header_marks_an_actor_error(
        app: tuple[App, HttpActorHost]) -> None:
    _, host = app
    failed = await host.invoke(ActorCall(ACTOR, "fails"), None)
    assert (failed.status, failed.data, failed.actor_error) == (
        500, b'{"message":"ValueError()"}', False)
    actor_error = await host.invoke(ActorCall(ACTOR, "actorerror"), None)
    assert (actor_error.status, actor_error.data, actor_error.actor_error) == (
        200, b"custom", True)
    assert ("X-App", "1") in actor_error.headers


async def test_ticks_carry_daprds_json_and_the_cancel_header(
        app: tuple[App, HttpActorHost]) -> None:
    state, host = app
    outcome = await host.tick(Tick(ACTOR, TickKind.REMINDER, "r1", due_time="1s",
                                   period="2s", data=b'"aGk="'))
    method, path, headers, body = state.seen[-1]
    assert (method, path) == ("PUT", "/actors/DemoActor/a%201/method/remind/r1")
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"dueTime": "1s", "period": "2s", "data": "aGk="}
    assert outcome.delivered and outcome.cancel
    timer = await host.tick(Tick(ACTOR, TickKind.TIMER, "t1", callback="cb"))
    assert json.loads(state.seen[-1][3]) == {"callback": "cb", "data": None, "dueTime": "",
                                              "period": ""}
    assert timer.delivered and not timer.cancel


async def test_deactivation_is_a_delete(app: tuple[App, HttpActorHost]) -> None:
    state, host = app
    assert await host.deactivate(ACTOR) is True  # acknowledged
    assert state.seen[-1][:2] == ("DELETE", "/actors/DemoActor/a%201")
    assert await host.deactivate(ActorRef("DemoActor", "refuses")) is False  # an error answer


def test_tick_body_keeps_non_json_data_as_base64() -> None:
    body = json.loads(tick_body(Tick(ACTOR, TickKind.REMINDER, "r", data=b"\xff")))
    assert body["data"] == "/w=="


# --- the stream host ------------------------------------------------------------------------

def test_an_initial_request_reads_as_dapr_config() -> None:
    initial = actors_pb2.SubscribeActorEventsRequestInitialAlpha1(entities=["A", "B"])
    initial.actor_idle_timeout.FromTimedelta(timedelta(seconds=90))
    initial.reentrancy.enabled = True
    initial.reentrancy.max_stack_depth = 4
    override = initial.entities_config.add(entities=["B"])
    override.actor_idle_timeout.FromTimedelta(timedelta(milliseconds=1500))
    types = initial_request_config(initial)
    assert types["A"] == EntityConfig(idle_timeout=90.0, reentrancy=Reentrancy(True, 4))
    assert types["B"].idle_timeout == 1.5


class StreamApp:
    """The app end of a stream: answers each request it is sent."""

    def __init__(self) -> None:
        self.host: StreamActorHost | None = None
        self.sent: list[Any] = []

    async def send(self, message: Any) -> None:
        self.sent.append(message)
        asyncio.get_running_loop().call_soon(self.answer, message)

    def answer(self, message: Any) -> None:
        assert self.host is not None
        kind = message.WhichOneof("response_type")
        request = getattr(message, kind)
        if kind == "invoke_request" and request.method == "missing":
            self.host.answer(actors_pb2.SubscribeActorEventsRequestAlpha1(
                request_failed=actors_pb2.SubscribeActorEventsRequestFailedAlpha1(
                    id=request.id, code=5, message="no such method")))
        elif kind == "invoke_request":
            self.host.answer(actors_pb2.SubscribeActorEventsRequestAlpha1(
                invoke_response=actors_pb2.SubscribeActorEventsRequestInvokeResponseAlpha1(
                    id=request.id, data=b"echo:" + request.data,
                    metadata={"content-type": "application/json"},
                    error=request.method == "fails")))
        elif kind == "reminder_request":
            self.host.answer(actors_pb2.SubscribeActorEventsRequestAlpha1(
                reminder_response=actors_pb2.SubscribeActorEventsRequestReminderResponseAlpha1(
                    id=request.id, cancel=True)))
        elif kind == "deactivate_request":
            self.host.answer(actors_pb2.SubscribeActorEventsRequestAlpha1(
                deactivate_response=(
                    actors_pb2.SubscribeActorEventsRequestDeactivateResponseAlpha1(
                        id=request.id))))


async def test_the_stream_correlates_answers_by_id() -> None:
    app = StreamApp()
    host = StreamActorHost({"A": EntityConfig()}, app.send)
    app.host = host
    assert set(await host.hosted()) == {"A"}
    first, second = await asyncio.gather(
        host.invoke(ActorCall(ActorRef("A", "1"), "m", data=b"1"), "rid"),
        host.invoke(ActorCall(ActorRef("A", "2"), "fails", data=b"2"), None))
    assert (first.data, first.content_type, first.actor_error) == (
        b"echo:1", "application/json", False)
    assert (second.data, second.actor_error) == (b"echo:2", True)
    sent = app.sent[0].invoke_request
    assert (sent.actor_type, sent.actor_id, sent.method, dict(sent.metadata)) == (
        "A", "1", "m", {"Dapr-Reentrancy-Id": "rid"})
    assert app.sent[0].invoke_request.id != app.sent[1].invoke_request.id
    with pytest.raises(NotFound, match="actor method not found"):
        await host.invoke(ActorCall(ActorRef("A", "1"), "missing"), None)
    outcome = await host.tick(Tick(ActorRef("A", "1"), TickKind.REMINDER, "r", data=b'"x"'))
    assert outcome.delivered and outcome.cancel
    assert await host.deactivate(ActorRef("A", "1")) is True
    assert app.sent[-1].WhichOneof("response_type") == "deactivate_request"


async def test_closing_the_stream_fails_what_waits() -> None:
    sent = asyncio.Event()

    async def send(message: Any) -> None:
        sent.set()

    host = StreamActorHost({"A": EntityConfig()}, send)
    call = asyncio.create_task(host.invoke(ActorCall(ActorRef("A", "1"), "m"), None))
    await sent.wait()
    host.close()
    with pytest.raises(Unavailable):
        await call
    with pytest.raises(Unavailable):
        await host.invoke(ActorCall(ActorRef("A", "1"), "m"), None)
    assert not (await host.tick(Tick(ActorRef("A", "1"), TickKind.TIMER, "t"))).delivered
