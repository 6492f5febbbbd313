"""Service invocation: ``/v1.0/invoke/{app}/method/{method...}``, any verb; the app's status,
headers and body come back unchanged."""

from __future__ import annotations

from aiohttp import web

from pylotto.capabilities.invoke import HOP_BY_HOP, InvokeRequest
from pylotto.facades.dapr.http.keys import runtime_of

DEFAULT_TIMEOUT_MS = 60_000
"""Dapr has no invocation timeout of its own; a minute bounds a hung app."""
_NOT_FORWARDED = HOP_BY_HOP | {"dapr-api-token", "content-type"}


async def invoke(request: web.Request) -> web.Response:
    result = await runtime_of(request).invoke.invoke(InvokeRequest(
        app_id=request.match_info["app"],
        method=request.match_info["method"],
        data=await request.read(),
        content_type=request.headers.get("Content-Type", ""),
        verb=request.method,
        querystring=request.query_string,
        headers=[(k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED],
        default_timeout_ms=DEFAULT_TIMEOUT_MS,
        pass_status=True,
    ))
    response = web.Response(status=result.status, body=result.data)
    for key, value in result.headers:
        if key.lower() != "content-type":
            response.headers.add(key, value)
    if result.content_type:
        response.headers["Content-Type"] = result.content_type
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_route("*", "/v1.0/invoke/{app}/method/{method:.+}", invoke)
