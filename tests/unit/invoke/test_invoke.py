import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pylotto.appchannel.select import app_channels
from pylotto.capabilities.base import RuntimeContext
from pylotto.capabilities.invoke import InvokeCapability, InvokeRequest
from pylotto.config.model import AppConfig
from pylotto.core.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotConfigured,
    Unavailable,
    Unsupported,
)


async def echo(request: web.Request) -> web.Response:
    payload = {
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "body": (await request.read()).decode(),
        "headers": dict(request.headers),
    }
    return web.json_response(payload, headers={"X-App": "mine", "Connection": "keep-alive"})


async def boom(request: web.Request) -> web.Response:
    return web.Response(status=500, text="boom")


async def created(request: web.Request) -> web.Response:
    return web.Response(status=201, body=b"\x00\x01", content_type="application/octet-stream")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "2")))
    return web.Response(text="done")


@pytest.fixture
async def app_server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/boom", boom)
    app.router.add_route("*", "/created", created)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def invoker(tmp_path: Path, port: int | None, app_id: str = "myapp") -> InvokeCapability:
    context = RuntimeContext(AppConfig(app_id=app_id, port=port), tmp_path)
    return InvokeCapability(context, channels=app_channels(context.app))


@pytest.fixture
async def invoke(tmp_path: Path, app_server: TestServer) -> AsyncIterator[InvokeCapability]:
    cap = invoker(tmp_path, app_server.port)
    await cap.start()
    yield cap
    await cap.stop()


async def test_post_carries_path_query_body_and_headers(invoke: InvokeCapability) -> None:
    result = await invoke.invoke(InvokeRequest(
        app_id="myapp", method="orders/42", data=b'{"n": 1}', content_type="application/json",
        verb="POST", querystring="a=1&b=two",
        headers=[("x-trace", "t1"), ("content-type", "application/grpc"), ("host", "evil")],
    ))
    sent = json.loads(result.data)
    assert sent["method"] == "POST" and sent["path"] == "/orders/42"
    assert sent["query"] == "a=1&b=two" and sent["body"] == '{"n": 1}'
    assert sent["headers"]["x-trace"] == "t1"
    assert sent["headers"]["id"] == "myapp"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["Host"] != "evil"
    assert result.content_type.startswith("application/json")
    names = {k.lower() for k, _ in result.headers}
    assert ("X-App", "mine") in result.headers
    assert "connection" not in names and "content-length" not in names


async def test_verb_defaults_to_get(invoke: InvokeCapability) -> None:
    for verb in ("", "NONE"):
        result = await invoke.invoke(InvokeRequest(app_id="myapp", method="/hello", verb=verb))
        assert json.loads(result.data)["method"] == "GET"
    result = await invoke.invoke(InvokeRequest(app_id="myapp", method="/x", verb="delete"))
    assert json.loads(result.data)["method"] == "DELETE"
    with pytest.raises(InvalidArgument, match="HTTP verb 'CONNECT'"):
        await invoke.invoke(InvokeRequest(app_id="myapp", method="/x", verb="CONNECT"))


async def test_any_2xx_is_success(invoke: InvokeCapability) -> None:
    result = await invoke.invoke(InvokeRequest(app_id="myapp", method="created", verb="PUT"))
    assert result.data == b"\x00\x01" and result.content_type == "application/octet-stream"


async def test_non_2xx_is_unavailable_with_code_and_body(invoke: InvokeCapability) -> None:
    with pytest.raises(Unavailable, match="http response code 500, body: boom"):
        await invoke.invoke(InvokeRequest(app_id="myapp", method="boom"))


async def test_other_app_ids_are_unsupported(invoke: InvokeCapability) -> None:
    with pytest.raises(Unsupported, match=r"cannot invoke app 'billing'.*name resolution"):
        await invoke.invoke(InvokeRequest(app_id="billing", method="x"))
    with pytest.raises(InvalidArgument, match=r"id .* is empty"):
        await invoke.invoke(InvokeRequest(app_id="", method="x"))
    with pytest.raises(InvalidArgument, match=r"method .* is empty"):
        await invoke.invoke(InvokeRequest(app_id="myapp", method=""))


async def test_no_app_port_is_not_configured(tmp_path: Path) -> None:
    cap = invoker(tmp_path, None)
    await cap.start()
    with pytest.raises(NotConfigured, match=r"app\.port"):
        await cap.invoke(InvokeRequest(app_id="myapp", method="x"))
    await cap.stop()


async def test_no_app_id_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(Unsupported, match=r"no app\.id set"):
        await invoker(tmp_path, 1, app_id="").invoke(InvokeRequest(app_id="x", method="m"))


async def test_timeouts(invoke: InvokeCapability) -> None:
    with pytest.raises(DeadlineExceeded, match=r"no answer within 0\.1s"):
        await invoke.invoke(InvokeRequest(
            app_id="myapp", method="slow", headers=[("rpc_request_timeout", "100")]))
    with pytest.raises(DeadlineExceeded, match=r"no answer within 0\.2s"):
        await invoke.invoke(InvokeRequest(app_id="myapp", method="slow", deadline_seconds=0.2))
    with pytest.raises(DeadlineExceeded, match="already passed"):
        await invoke.invoke(InvokeRequest(app_id="myapp", method="slow", deadline_seconds=0))
    with pytest.raises(InvalidArgument, match="rpc_request_timeout"):
        await invoke.invoke(InvokeRequest(
            app_id="myapp", method="slow", headers=[("rpc_request_timeout", "soon")]))


async def test_unreachable_app_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cap = invoker(tmp_path, port)
    await cap.start()
    try:
        with pytest.raises(Unavailable, match="app unreachable"):
            await cap.invoke(InvokeRequest(app_id="myapp", method="x"))
    finally:
        await cap.stop()


async def test_stop_lets_calls_in_flight_finish(tmp_path: Path, app_server: TestServer) -> None:
    cap = invoker(tmp_path, app_server.port)
    await cap.start()
    call = asyncio.create_task(cap.invoke(InvokeRequest(
        app_id="myapp", method="slow", querystring="s=0.3")))
    await asyncio.sleep(0.1)
    await cap.stop()
    assert (await call).data == b"done"


async def test_calls_after_stop_are_unavailable(tmp_path: Path, app_server: TestServer) -> None:
    cap = invoker(tmp_path, app_server.port)
    await cap.start()
    await cap.stop()
    with pytest.raises(Unavailable, match="closed"):
        await cap.invoke(InvokeRequest(app_id="myapp", method="x"))
