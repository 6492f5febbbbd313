"""Bindings, secrets and lock: ``/v1.0/bindings``, ``/v1.0/secrets``, ``/v1.0-alpha1/lock``
and ``/unlock`` (configuration: :mod:`.configuration`)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from pylotto.core.errors import InvalidArgument
from pylotto.core.gojson import go_json
from pylotto.facades.dapr.http.keys import json_of, metadata_params, services_of


def _object(body: object, what: str) -> Mapping[str, object]:
    if not isinstance(body, Mapping):
        raise InvalidArgument(f"the body must be a JSON object {what}")
    return body


async def invoke_binding(request: web.Request) -> web.Response:
    body = _object(await json_of(request), '{"operation", "data", "metadata"}')
    # daprd hands the binding ``json.Marshal(data)``: a string with its quotes, no data as
    # ``null``, an object re-encoded by Go (keys sorted, numbers as float64)
    payload = go_json(body.get("data"), float64=True).encode()
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument("binding metadata is an object")
    result = await services_of(request).bindings.invoke(
        request.match_info["name"], str(body.get("operation") or ""), payload,
        {str(k): str(v) for k, v in metadata.items()})
    if not result.data:
        return web.Response(status=204, headers={f"metadata.{k}": v
                                                 for k, v in result.metadata.items()})
    return web.Response(body=result.data, headers={f"metadata.{k}": v
                                                   for k, v in result.metadata.items()})


async def get_secret(request: web.Request) -> web.Response:
    data = await services_of(request).secrets.get_secret(
        request.match_info["store"], request.match_info["key"], metadata_params(request))
    return web.json_response(dict(data))


async def get_bulk_secret(request: web.Request) -> web.Response:
    secrets = await services_of(request).secrets.get_bulk_secret(
        request.match_info["store"], metadata_params(request))
    return web.json_response({name: dict(values) for name, values in secrets.items()})


async def try_lock(request: web.Request) -> web.Response:
    body = _object(await json_of(request), '{"resourceId", "lockOwner", "expiryInSeconds"}')
    expiry = body.get("expiryInSeconds")
    if not isinstance(expiry, int) or isinstance(expiry, bool):
        raise InvalidArgument("expiryInSeconds must be an integer")
    success = await services_of(request).lock.try_lock(
        request.match_info["store"], str(body.get("resourceId") or ""),
        str(body.get("lockOwner") or ""), expiry)
    return web.json_response({"success": success})


async def unlock(request: web.Request) -> web.Response:
    body = _object(await json_of(request), '{"resourceId", "lockOwner"}')
    status = await services_of(request).lock.unlock(
        request.match_info["store"], str(body.get("resourceId") or ""),
        str(body.get("lockOwner") or ""))
    return web.json_response({"status": int(status)})


def add_routes(router: web.UrlDispatcher) -> None:
    for method in ("POST", "PUT"):
        router.add_route(method, "/v1.0/bindings/{name}", invoke_binding)
        router.add_route(method, "/v1.0-alpha1/lock/{store}", try_lock)
        router.add_route(method, "/v1.0-alpha1/unlock/{store}", unlock)
    router.add_get("/v1.0/secrets/{store}/bulk", get_bulk_secret)
    router.add_get("/v1.0/secrets/{store}/{key}", get_secret)
