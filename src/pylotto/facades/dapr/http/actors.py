"""Dapr's actor routes (``/v1.0/actors/...``, daprd's pkg/api/http/actors.go; docs/design/
actors.md §2.1), over the :class:`~pylotto.capabilities.actors.api.Actors` capability:

- ``POST|PUT .../{type}/{id}/state``: a transaction ``[{"operation", "request": {"key",
  "value", "metadata"}}]`` → 204;
- ``GET|POST|PUT|DELETE .../{type}/{id}/method/{method}``: invoke; the app's status, headers
  and body come back (an actor error as the app sent it);
- ``GET .../{type}/{id}/state/{key}``: the raw value as ``application/json``, its metadata as
  ``metadata.<k>`` headers; 204 when there is none;
- ``POST|PUT|DELETE|GET .../{type}/{id}/reminders/{name}`` and ``POST|PUT|DELETE
  .../timers/{name}``.

Timer and reminder ``data`` is any JSON, stored as its JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from pylotto.capabilities import forwarding
from pylotto.capabilities.actors.api import (
    REENTRANCY_HEADER,
    ActorCall,
    ActorRef,
    Actors,
    ReminderSpec,
    StateOperation,
    TimerSpec,
)
from pylotto.core.errors import InvalidArgument
from pylotto.core.json_input import NotJson
from pylotto.facades.dapr.actors import answer_or_raise
from pylotto.facades.dapr.http.jobs import _policy
from pylotto.facades.dapr.http.keys import json_of, services_of

PREFIX = "/v1.0/actors/{type}/{id}"


def _actors(request: web.Request) -> Actors:
    actors: Actors = services_of(request).actors
    return actors


def _actor(request: web.Request) -> ActorRef:
    return ActorRef(request.match_info["type"], request.match_info["id"])


def _malformed(detail: str) -> InvalidArgument:
    return InvalidArgument(detail, where="http.body", detail=detail)


async def _body(request: web.Request) -> object:
    """The JSON body (None: empty); one that does not parse is daprd's
    ``ErrMalformedRequest``, ``failed deserializing HTTP body: …``."""
    try:
        return await json_of(request)
    except NotJson as err:
        raise _malformed(err.message) from None


async def _object(request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _malformed(f"expected a JSON object, not {type(body).__name__}")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _malformed(f"{name}: expected a string")
    return value


def _data(body: dict[str, Any]) -> bytes:
    """``data`` as its JSON text (b"": none given)."""
    if body.get("data") is None:
        return b""
    return json.dumps(body["data"], separators=(",", ":")).encode()


async def invoke_actor(request: web.Request) -> web.Response:
    headers = forwarding.from_http_headers(request.headers.items())
    call = ActorCall(
        actor=_actor(request), method=request.match_info["method"],
        data=await request.read(), content_type=request.headers.get("Content-Type", ""),
        headers=tuple((k, v) for k, v in headers
                      if k.lower() not in ("content-type", REENTRANCY_HEADER.lower())),
        reentrancy_id=request.headers.get(REENTRANCY_HEADER) or None,
        query=request.query_string)
    answer = answer_or_raise(await _actors(request).invoke(call))
    response = web.Response(status=answer.status, body=answer.data)
    for key, value in answer.headers:
        if key.lower() != "content-type":
            response.headers.add(key, value)
    if answer.content_type:
        response.headers["Content-Type"] = answer.content_type
    return response


async def get_actor_state(request: web.Request) -> web.Response:
    value, metadata = await _actors(request).get_state(_actor(request),
                                                      request.match_info["key"])
    if not value:
        return web.Response(status=204)
    response = web.Response(status=200, body=value, content_type="application/json")
    for key, item in metadata.items():
        response.headers[f"metadata.{key}"] = item
    return response


def _operations(body: object) -> list[StateOperation]:
    if not isinstance(body, list):
        raise _malformed("expected a JSON array of operations")
    operations = []
    for item in body:
        if not isinstance(item, dict):
            raise _malformed("an operation is not a JSON object")
        inner = item.get("request") or {}
        if not isinstance(inner, dict):
            raise _malformed("an operation's request is not a JSON object")
        metadata = inner.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _malformed("an operation's metadata is not a JSON object")
        value = inner.get("value")
        operations.append(StateOperation(
            operation=str(item.get("operation") or ""), key=str(inner.get("key") or ""),
            value=b"" if value is None else json.dumps(value, separators=(",", ":")).encode(),
            metadata={str(k): str(v) for k, v in metadata.items()}))
    return operations


async def actor_transaction(request: web.Request) -> web.Response:
    operations = _operations(await _body(request) or [])
    await _actors(request).transact(_actor(request), operations)
    return web.Response(status=204)


async def register_actor_reminder(request: web.Request) -> web.Response:
    body = await _object(request)
    overwrite = body.get("overwrite")
    if overwrite is not None and not isinstance(overwrite, bool):
        raise _malformed("overwrite: expected a boolean")
    spec = ReminderSpec(due_time=_text(body, "dueTime"), period=_text(body, "period"),
                        ttl=_text(body, "ttl"), data=_data(body),
                        failure_policy=_policy(body.get("failure_policy")))
    await _actors(request).register_reminder(_actor(request), request.match_info["name"], spec,
                                             True if overwrite is None else overwrite)
    return web.Response(status=204)


async def unregister_actor_reminder(request: web.Request) -> web.Response:
    await _actors(request).unregister_reminder(_actor(request), request.match_info["name"])
    return web.Response(status=204)


async def get_actor_reminder(request: web.Request) -> web.Response:
    reminder = await _actors(request).get_reminder(_actor(request), request.match_info["name"])
    spec = reminder.spec
    out: dict[str, Any] = {"actorID": reminder.actor.id, "actorType": reminder.actor.type}
    if spec.data:
        try:
            out["data"] = json.loads(spec.data)
        except (ValueError, UnicodeDecodeError):
            out["data"] = spec.data.decode(errors="replace")
    for key, value in (("dueTime", spec.due_time), ("period", spec.period), ("ttl", spec.ttl)):
        if value:
            out[key] = value
    return web.json_response(out)


async def register_actor_timer(request: web.Request) -> web.Response:
    body = await _object(request)
    spec = TimerSpec(due_time=_text(body, "dueTime"), period=_text(body, "period"),
                     ttl=_text(body, "ttl"), callback=_text(body, "callback"), data=_data(body))
    await _actors(request).register_timer(_actor(request), request.match_info["name"], spec)
    return web.Response(status=204)


async def unregister_actor_timer(request: web.Request) -> web.Response:
    await _actors(request).unregister_timer(_actor(request), request.match_info["name"])
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    for verb in ("POST", "PUT"):
        router.add_route(verb, f"{PREFIX}/state", actor_transaction)
        router.add_route(verb, f"{PREFIX}/reminders/{{name}}", register_actor_reminder)
        router.add_route(verb, f"{PREFIX}/timers/{{name}}", register_actor_timer)
    for verb in ("GET", "POST", "PUT", "DELETE"):
        router.add_route(verb, f"{PREFIX}/method/{{method:.+}}", invoke_actor)
    router.add_get(f"{PREFIX}/state/{{key}}", get_actor_state, allow_head=False)
    router.add_delete(f"{PREFIX}/reminders/{{name}}", unregister_actor_reminder)
    router.add_get(f"{PREFIX}/reminders/{{name}}", get_actor_reminder, allow_head=False)
    router.add_delete(f"{PREFIX}/timers/{{name}}", unregister_actor_timer)
