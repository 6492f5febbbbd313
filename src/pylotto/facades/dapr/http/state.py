"""State: ``/v1.0/state/{store}...`` and ``/v1.0-alpha1/state/{store}/query``.

Values arrive as JSON and are stored as their JSON text (``"hello"`` is stored as ``"hello"``
with the quotes, as Dapr does); reads return the stored bytes as they are.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from pylotto.capabilities.state import StateItem, StateOperation
from pylotto.components.state.base import Concurrency, Consistency
from pylotto.core.errors import InvalidArgument
from pylotto.core.json_input import decode_json
from pylotto.facades.dapr.http.keys import json_of, metadata_params, services_of


def _enum(kind: type[Concurrency] | type[Consistency], value: object, what: str) -> Any:
    try:
        return kind(str(value or ""))
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in kind if m.value)
        raise InvalidArgument(f"{what} {value!r} is not one of {allowed}") from None


def _item(raw: object, *, with_value: bool) -> StateItem:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("key"), str):
        raise InvalidArgument("each state item needs a string \"key\"")
    options = raw.get("options") or {}
    metadata = raw.get("metadata") or {}
    etag = raw.get("etag")
    if not isinstance(options, Mapping) or not isinstance(metadata, Mapping):
        raise InvalidArgument(f"state item {raw['key']!r}: options and metadata are objects")
    value = json.dumps(raw.get("value"), separators=(",", ":")).encode() if with_value else b""
    return StateItem(
        key=raw["key"],
        value=value,
        etag=str(etag) if etag not in (None, "") else None,
        metadata={str(k): str(v) for k, v in metadata.items()},
        concurrency=_enum(Concurrency, options.get("concurrency"), "concurrency"),
        consistency=_enum(Consistency, options.get("consistency"), "consistency"),
    )


def _data(value: bytes) -> object:
    """A stored value as JSON in a response: the document itself when it is JSON."""
    try:
        return decode_json(value, "the stored value")
    except InvalidArgument:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")


async def get_state(request: web.Request) -> web.Response:
    store, key = request.match_info["store"], request.match_info["key"]
    got = await services_of(request).state.get_state(
        store, key, _enum(Consistency, request.query.get("consistency"), "consistency"),
        metadata_params(request))
    if not got.value and not got.etag:
        return web.Response(status=204)
    headers = {f"metadata.{k}": v for k, v in got.metadata.items()}
    if got.etag:
        headers["ETag"] = got.etag
    return web.Response(body=got.value, headers=headers, content_type="application/json")


async def save_state(request: web.Request) -> web.Response:
    body = await json_of(request)
    if not isinstance(body, list):
        raise InvalidArgument("the body must be a JSON array of state items")
    items = [_item(raw, with_value=True) for raw in body]
    await services_of(request).state.save_state(request.match_info["store"], items)
    return web.Response(status=204)


async def delete_state(request: web.Request) -> web.Response:
    query = request.query
    item = StateItem(
        key=request.match_info["key"],
        etag=request.headers.get("If-Match") or None,
        metadata=metadata_params(request),
        concurrency=_enum(Concurrency, query.get("concurrency"), "concurrency"),
        consistency=_enum(Consistency, query.get("consistency"), "consistency"),
    )
    await services_of(request).state.delete_state(request.match_info["store"], item)
    return web.Response(status=204)


async def bulk_get(request: web.Request) -> web.Response:
    body = await json_of(request)
    keys = body.get("keys") if isinstance(body, Mapping) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InvalidArgument('the body must be {"keys": [string...]}')
    items = await services_of(request).state.get_bulk_state(
        request.match_info["store"], keys, metadata_params(request))
    out = []
    for item in items:
        entry: dict[str, object] = {"key": item.key}
        if item.value:
            entry["data"] = _data(item.value)
        if item.etag:
            entry["etag"] = item.etag
        if item.error:
            entry["error"] = item.error
        if item.metadata:
            entry["metadata"] = item.metadata
        out.append(entry)
    return web.json_response(out)


async def transaction(request: web.Request) -> web.Response:
    body = await json_of(request)
    if not isinstance(body, Mapping):
        body = {}
    operations = body.get("operations")
    if not isinstance(operations, list):
        raise InvalidArgument('the body must be {"operations": [...], "metadata": {...}}')
    ops = []
    for raw in operations:
        if not isinstance(raw, Mapping):
            raise InvalidArgument("each operation is an object")
        kind = str(raw.get("operation") or raw.get("operationType") or "")
        request_item = raw.get("request")
        ops.append(StateOperation(
            kind, None if request_item is None
            else _item(request_item, with_value=kind == "upsert")))
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument("transaction metadata is an object")
    await services_of(request).state.execute_state_transaction(
        request.match_info["store"], ops, {str(k): str(v) for k, v in metadata.items()})
    return web.Response(status=204)


async def query(request: web.Request) -> web.Response:
    body = await json_of(request)
    result = await services_of(request).state.query_state(
        request.match_info["store"], body if isinstance(body, Mapping) else {},
        metadata_params(request))
    return web.json_response({
        "results": [{"key": i.key, "data": _data(i.value), "etag": i.etag or ""}
                    for i in result.items],
        "token": result.token,
    })


def add_routes(router: web.UrlDispatcher) -> None:
    for method in ("POST", "PUT"):
        router.add_route(method, "/v1.0/state/{store}", save_state)
        router.add_route(method, "/v1.0/state/{store}/bulk", bulk_get)
        router.add_route(method, "/v1.0/state/{store}/transaction", transaction)
        router.add_route(method, "/v1.0-alpha1/state/{store}/query", query)
    router.add_get("/v1.0/state/{store}/{key}", get_state)
    router.add_delete("/v1.0/state/{store}/{key}", delete_state)
