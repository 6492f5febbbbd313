import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.bindings import BindingsCapability
from pylotto.components.base import ComponentContext
from pylotto.components.bindings.base import BindingRequest, OutputBinding
from pylotto.components.bindings.http import HttpBinding
from pylotto.config.model import AppConfig
from pylotto.core.errors import (
    ComponentNotFound,
    ConfigError,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotConfigured,
    Unavailable,
)
from pylotto.core.metadata import decode, parse_duration, parse_size
from pylotto.core.registry import resolve


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    payload = {
        "method": request.method,
        "path": request.path,
        "query": request.query_string,
        "body": body.decode(),
        "headers": dict(request.headers),
    }
    return web.json_response(payload, headers={"X-Reply": "yes"})


async def fail(request: web.Request) -> web.Response:
    return web.Response(status=404, text="no such thing")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.Response(text="late")


async def big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * 10_000)


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/api/fail", fail)
    app.router.add_route("*", "/api/slow", slow)
    app.router.add_route("*", "/api/big", big)
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def binding(tmp_path: Path, url: str, **metadata: str) -> HttpBinding:
    settings = decode(HttpBinding.Settings, {"url": url, **metadata}, component="bindings.http")
    component = HttpBinding("web", settings, ComponentContext(app_id="a", data_dir=tmp_path))
    await component.init()
    return component


@pytest.fixture
async def web_binding(tmp_path: Path, server: TestServer) -> AsyncIterator[HttpBinding]:
    component = await binding(tmp_path, str(server.make_url("/api/")), responseTimeout="500ms")
    yield component
    await component.close()


def capability(tmp_path: Path, bindings: dict[str, OutputBinding]) -> BindingsCapability:
    return BindingsCapability(ComponentSet("binding", bindings),
                              RuntimeContext(AppConfig(app_id="a"), tmp_path))


async def test_get_with_path_and_headers(web_binding: HttpBinding) -> None:
    response = await web_binding.invoke(BindingRequest(
        "get", b"ignored", {"path": "/items/1?x=1", "X-Token": "t", "token": "not-a-header",
                            "traceparent": "00-abc-def-01"},
    ))
    sent = json.loads(response.data)
    assert sent["method"] == "GET" and sent["path"] == "/api/items/1" and sent["query"] == "x=1"
    assert sent["body"] == ""
    assert sent["headers"]["X-Token"] == "t" and "token" not in sent["headers"]
    assert sent["headers"]["traceparent"] == "00-abc-def-01"
    assert sent["headers"]["Accept"] == "application/json; charset=utf-8"
    assert response.metadata["statusCode"] == "200"
    assert response.metadata["status"] == "200 OK"
    assert response.metadata["X-Reply"] == "yes"
    assert response.metadata["Content-Type"].startswith("application/json")


async def test_create_is_post_with_a_json_default_content_type(web_binding: HttpBinding) -> None:
    response = await web_binding.invoke(BindingRequest("create", b'{"a": 1}', {}))
    sent = json.loads(response.data)
    assert sent["method"] == "POST" and sent["body"] == '{"a": 1}' and sent["path"] == "/api/"
    assert sent["headers"]["Content-Type"] == "application/json; charset=utf-8"
    response = await web_binding.invoke(
        BindingRequest("put", b"plain", {"Content-Type": "text/plain"})
    )
    sent = json.loads(response.data)
    assert sent["method"] == "PUT" and sent["headers"]["Content-Type"] == "text/plain"


async def test_non_2xx_is_an_error_unless_disabled(web_binding: HttpBinding) -> None:
    with pytest.raises(Internal, match="received status code 404: no such thing"):
        await web_binding.invoke(BindingRequest("get", b"", {"path": "fail"}))
    response = await web_binding.invoke(
        BindingRequest("get", b"", {"path": "fail", "errorIfNot2XX": "false"})
    )
    assert response.metadata["statusCode"] == "404" and response.data == b"no such thing"


async def test_component_can_turn_the_status_error_off(
    tmp_path: Path, server: TestServer
) -> None:
    component = await binding(tmp_path, str(server.make_url("/api/fail")), errorIfNot2XX="false")
    try:
        response = await component.invoke(BindingRequest("delete", b"", {}))
        assert response.metadata["statusCode"] == "404"
    finally:
        await component.close()


async def test_timeout_is_deadline_exceeded(web_binding: HttpBinding) -> None:
    with pytest.raises(DeadlineExceeded, match=r"GET .*/api/slow: no answer within 0.5s"):
        await web_binding.invoke(BindingRequest("get", b"", {"path": "slow"}))


async def test_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    component = await binding(tmp_path, f"http://127.0.0.1:{port}/")
    try:
        with pytest.raises(Unavailable, match="binding web: GET"):
            await component.invoke(BindingRequest("get", b"", {}))
    finally:
        await component.close()


async def test_security_token_and_body_limit(tmp_path: Path, server: TestServer) -> None:
    component = await binding(tmp_path, str(server.make_url("/api")), securityToken="abc",
                              securityTokenHeader="X-Api-Key", maxResponseBodySize="1Ki")
    try:
        sent = json.loads((await component.invoke(BindingRequest("get", b"", {}))).data)
        assert sent["headers"]["X-Api-Key"] == "abc"
        response = await component.invoke(BindingRequest("get", b"", {"path": "big"}))
        assert response.data == b"x" * 1024  # 10 000 bytes cut at the limit
    finally:
        await component.close()


async def test_capability_checks_the_operation(tmp_path: Path, web_binding: HttpBinding) -> None:
    cap = capability(tmp_path, {"web": web_binding})
    response = await cap.invoke("web", "get", b"", {"path": "ok"})
    assert json.loads(response.data)["path"] == "/api/ok"
    with pytest.raises(InvalidArgument, match="operation field is missing"):
        await cap.invoke("web", "", b"", {})
    with pytest.raises(InvalidArgument, match=re.escape(
        "binding web does not support operation connect. supported operations: "
        "create, get, head, post, put, patch, delete, options, trace")):
        await cap.invoke("web", "connect", b"", {})
    with pytest.raises(ComponentNotFound, match="binding nope is not found"):
        await cap.invoke("nope", "get", b"", {})
    with pytest.raises(NotConfigured, match="binding is not configured"):
        await capability(tmp_path, {}).invoke("web", "get", b"", {})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0), ("5", 5.0), ("1.5s", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "size"), [("100", 100), ("1Ki", 1024), ("100Mi", 100 << 20),
                                            ("2MB", 2 << 20), ("1g", 1 << 30)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [({}, "'url'"), ({"url": "ftp://x"}, "http:// or https://"),
     ({"url": "http://x", "responseTimeout": "soon"}, "responseTimeout"),
     ({"url": "http://x", "maxResponseBodySize": "lots"}, "maxResponseBodySize")],
)
def test_bad_settings_are_config_errors(metadata: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        decode(HttpBinding.Settings, metadata, component="bindings.web")


def test_both_type_names_resolve() -> None:
    assert resolve("bindings", "http") is HttpBinding
    assert resolve("bindings", "bindings.http") is HttpBinding
