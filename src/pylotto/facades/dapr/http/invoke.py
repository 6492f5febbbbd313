"""Service invocation: ``/v1.0/invoke/{app}/method/{method...}``, any verb; the app's status,
headers and body come back unchanged (a gRPC app's protobuf answer as its bytes, with Dapr's
``Content-Type: application/x-protobuf``)."""

from __future__ import annotations

from aiohttp import web

from pylotto.capabilities import forwarding
from pylotto.capabilities.invoke import DAPR_TIMEOUT_MS, InvokeRequest
from pylotto.facades.dapr.http.keys import services_of


async def invoke(request: web.Request) -> web.Response:
    result = await services_of(request).invoke.invoke(InvokeRequest(
        app_id=request.match_info["app"],
        method=request.match_info["method"],
        data=await request.read(),
        content_type=request.headers.get("Content-Type", ""),
        verb=request.method,
        querystring=request.query_string,
        headers=forwarding.from_http_headers(request.headers.items()),
        default_timeout_ms=DAPR_TIMEOUT_MS,
        pass_status=True,
    ))
    response = web.Response(status=result.status, body=result.data)
    for key, value in result.headers:
        if key.lower() != "content-type":
            response.headers.add(key, value)
    if result.wire_content_type:
        response.headers["Content-Type"] = result.wire_content_type
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_route("*", "/v1.0/invoke/{app}/method/{method:.+}", invoke)
