"""The app side of Dapr's actors (docs/design/actors.md §1): how the sidecar reaches the app
that hosts actor types.

- :class:`HttpActorHost`, an HTTP app: ``GET /dapr/config`` (with ``Dapr-App-Id``; any
  status but 200 means "no actor types"), then ``PUT /actors/<type>/<id>/method/<method>``,
  ``.../method/remind/<name>``, ``.../method/timer/<name>`` and ``DELETE /actors/<type>/<id>``.
- :class:`StreamActorHost`, a gRPC app: the app dials the sidecar and opens
  ``SubscribeActorEventsAlpha1``; its ``initial_request`` names the types, then the sidecar
  pushes requests with an id and the app answers with the same id.

Answers, as daprd reads them: an app's 404 to a method is NotFound ``actor method not found:
<path>``; a 200 with ``X-Daprerrorresponseheader`` (gRPC: ``invoke_response.error``) is an
actor error, passed back as it is; ``X-Daprremindercancel: true`` on a tick (gRPC:
``reminder_response.cancel``) cancels the reminder or timer.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from dapr.proto.runtime.v1 import actors_pb2
from google.protobuf import any_pb2, wrappers_pb2

from pylotto.appchannel.actor_config import parse_app_config
from pylotto.appchannel.actor_host import (
    ACTOR_ERROR_HEADER,
    REENTRANCY_HEADER,
    REMINDER_CANCEL_HEADER,
    ActorAnswer,
    ActorCall,
    ActorHost,
    ActorRef,
    EntityConfig,
    Headers,
    Tick,
    TickKind,
    TickOutcome,
)
from pylotto.appchannel.http import AppRequest, AppResponse, HttpAppChannel
from pylotto.core.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    PylottoError,
    Unavailable,
)
from pylotto.core.json_input import decode_json

log = logging.getLogger("pylotto.appchannel.actors")

CONFIG_PATH = "/dapr/config"
APP_ID_HEADER = "Dapr-App-Id"
CONFIG_VERSION_HEADER = "dapr-app-config-version"
CONFIG_TIMEOUT_SECONDS = 5.0
CALL_TIMEOUT_SECONDS = 60.0
"""How long one callback to the app may take (a method, a tick, a deactivation)."""

_NOT_PASSED = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive",
                         "host", "date", "server", "content-type", "content-encoding"})
"""Headers the HTTP exchange itself sets, never passed on between caller and app."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def actor_path(actor: ActorRef) -> str:
    return f"/actors/{_segment(actor.type)}/{_segment(actor.id)}"


def method_path(actor: ActorRef, method: str) -> str:
    """``/actors/<type>/<id>/method/<method>`` (the method is normalised already)."""
    return f"{actor_path(actor)}/method/{quote(method, safe='/')}"


def passed_headers(headers: Headers | list[tuple[str, str]]) -> Headers:
    """``headers`` without those of the HTTP exchange itself."""
    return tuple((k, v) for k, v in headers if k.lower() not in _NOT_PASSED)


def _header(response: AppResponse, name: str) -> str:
    lowered = name.lower()
    return next((v for k, v in response.headers if k.lower() == lowered), "")


def tick_body(tick: Tick) -> bytes:
    """The JSON body of a reminder or timer callback: ``{"dueTime","period","data"}``
    (timers with ``"callback"`` too); ``data`` is the stored JSON as it is (null: none)."""
    data: Any = None
    if tick.data:
        try:
            data = json.loads(tick.data)
        except (ValueError, UnicodeDecodeError):
            data = base64.b64encode(tick.data).decode()  # not JSON: sent as a base64 string
    if tick.kind is TickKind.TIMER:
        body: dict[str, Any] = {"callback": tick.callback, "data": data,
                                "dueTime": tick.due_time, "period": tick.period}
    else:
        body = {"dueTime": tick.due_time, "period": tick.period, "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


class HttpActorHost(ActorHost):
    """An HTTP app hosting actors, over the sidecar's :class:`HttpAppChannel` to it."""

    def __init__(self, http: HttpAppChannel, app_id: str) -> None:
        self.http = http
        self.app_id = app_id
        self.description = f"app at {http.base_url}"

    async def hosted(self) -> Mapping[str, EntityConfig]:
        """The app's ``/dapr/config``: {} when it answers anything but 200 (it hosts no
        actors); Unavailable / DeadlineExceeded when it is not reachable (yet)."""
        response = await self.http.send(AppRequest(
            "GET", CONFIG_PATH, headers=[(APP_ID_HEADER, self.app_id)],
            timeout=CONFIG_TIMEOUT_SECONDS))
        if response.status != 200:
            log.debug("%s: %s answered %d: no actor types", self.description, CONFIG_PATH,
                      response.status)
            return {}
        version = _header(response, CONFIG_VERSION_HEADER)
        if version and version != "v1":
            log.warning("%s: %s has version %r; only v1 is known, read as v1",
                        self.description, CONFIG_PATH, version)
        if not response.body.strip():
            return {}
        try:
            doc = decode_json(response.body, f"{CONFIG_PATH}'s answer")
        except InvalidArgument as exc:
            log.warning("%s: %s: %s: no actor types", self.description, CONFIG_PATH,
                        exc.message)
            return {}
        if not isinstance(doc, Mapping):
            log.warning("%s: %s is not a JSON object: no actor types", self.description,
                        CONFIG_PATH)
            return {}
        return parse_app_config(doc)

    async def invoke(self, call: ActorCall, reentrancy_id: str | None) -> ActorAnswer:
        path = method_path(call.actor, call.method)
        headers = [(k, v) for k, v in passed_headers(call.headers)
                   if k.lower() != REENTRANCY_HEADER.lower()]
        if call.content_type:
            headers.append(("Content-Type", call.content_type))
        if reentrancy_id:
            headers.append((REENTRANCY_HEADER, reentrancy_id))
        response = await self.http.send(AppRequest("PUT", path, query=call.query,
                                                   headers=headers, body=call.data,
                                                   timeout=CALL_TIMEOUT_SECONDS))
        if response.status == 404:
            raise NotFound(f"actor method not found: {path.lstrip('/')}", where="actors.invoke")
        return ActorAnswer(
            status=response.status, data=response.body, content_type=response.content_type,
            headers=passed_headers(response.headers),
            actor_error=bool(_header(response, ACTOR_ERROR_HEADER)))

    async def tick(self, tick: Tick) -> TickOutcome:
        path = method_path(tick.actor, f"{tick.kind.value}/{tick.name}")
        try:
            response = await self.http.send(AppRequest(
                "PUT", path, headers=[("Content-Type", "application/json")],
                body=tick_body(tick), timeout=CALL_TIMEOUT_SECONDS))
        except (Unavailable, DeadlineExceeded, InvalidArgument) as exc:
            log.warning("%s: %s %s not delivered: %s", self.description, tick.kind.value,
                        tick.name, exc.message)
            return TickOutcome(delivered=False)
        if response.status != 200:
            log.warning("%s: PUT %s answered %d: %s", self.description, path, response.status,
                        response.body[:200].decode(errors="replace"))
            return TickOutcome(delivered=False)
        cancel = _header(response, REMINDER_CANCEL_HEADER).strip().lower() == "true"
        return TickOutcome(delivered=True, cancel=cancel)

    async def deactivate(self, actor: ActorRef) -> bool:
        path = actor_path(actor)
        try:
            response = await self.http.send(AppRequest("DELETE", path,
                                                       timeout=CALL_TIMEOUT_SECONDS))
        except PylottoError as exc:
            log.warning("%s: DELETE %s failed: %s", self.description, path, exc.message)
            return False
        if response.status != 200:
            log.warning("%s: DELETE %s answered %d", self.description, path, response.status)
            return False
        return True


# --- the gRPC app's stream -------------------------------------------------------------------

def _go_duration(duration: Any) -> str:
    """A ``google.protobuf.Duration`` as a Go duration string."""
    seconds = duration.seconds + duration.nanos / 1e9
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _entity_doc(message: Any) -> dict[str, Any]:
    """The ``/dapr/config``-shaped fields of an ``initial_request`` or ``entities_config``."""
    doc: dict[str, Any] = {"entities": list(message.entities)}
    if message.HasField("actor_idle_timeout"):
        doc["actorIdleTimeout"] = _go_duration(message.actor_idle_timeout)
    if message.HasField("drain_ongoing_call_timeout"):
        doc["drainOngoingCallTimeout"] = _go_duration(message.drain_ongoing_call_timeout)
    if message.HasField("drain_rebalanced_actors"):
        doc["drainRebalancedActors"] = message.drain_rebalanced_actors
    if message.HasField("reentrancy"):
        reentrancy: dict[str, Any] = {"enabled": message.reentrancy.enabled}
        if message.reentrancy.HasField("max_stack_depth"):
            reentrancy["maxStackDepth"] = message.reentrancy.max_stack_depth
        doc["reentrancy"] = reentrancy
    return doc


def initial_request_config(
        initial: actors_pb2.SubscribeActorEventsRequestInitialAlpha1,
) -> dict[str, EntityConfig]:
    """The types and settings of a stream's ``initial_request`` (the ``/dapr/config`` fields,
    read by the same parser)."""
    doc = _entity_doc(initial)
    doc["entitiesConfig"] = [_entity_doc(c) for c in initial.entities_config]
    return parse_app_config(doc)


def _bytes_any(data: bytes) -> any_pb2.Any | None:
    """Stored tick data as the stream sends it: a ``BytesValue`` in an Any."""
    if not data:
        return None
    packed = any_pb2.Any()
    packed.Pack(wrappers_pb2.BytesValue(value=data))
    return packed


_STATUS_NOT_FOUND = 5

Send = Callable[[actors_pb2.SubscribeActorEventsResponseAlpha1], Awaitable[None]]


class StreamActorHost(ActorHost):
    """A gRPC app's ``SubscribeActorEventsAlpha1`` stream: requests go out through ``send``
    with an id, :meth:`answer` resolves them by that id; :meth:`close` fails what is still
    waiting (the stream ended)."""

    def __init__(self, types: Mapping[str, EntityConfig], send: Send,
                 description: str = "gRPC app's actor stream") -> None:
        self._types = dict(types)
        self._send = send
        self.description = description
        self._pending: dict[str, asyncio.Future[actors_pb2.SubscribeActorEventsRequestAlpha1]] = {}
        self._ids = itertools.count(1)
        self._closed = False

    async def hosted(self) -> Mapping[str, EntityConfig]:
        return dict(self._types)

    @property
    def closed(self) -> bool:
        return self._closed

    def answer(self, message: actors_pb2.SubscribeActorEventsRequestAlpha1) -> None:
        """One message from the app: the answer to the request with its id."""
        kind = message.WhichOneof("request_type")
        if kind is None or kind == "initial_request":
            log.warning("%s: unexpected %s ignored", self.description, kind or "empty message")
            return
        request_id = getattr(message, kind).id
        future = self._pending.pop(request_id, None)
        if future is None:
            log.debug("%s: answer to unknown request %r ignored", self.description, request_id)
            return
        if not future.done():
            future.set_result(message)

    def close(self) -> None:
        self._closed = True
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(Unavailable(f"{self.description} closed"))

    async def _request(self, **request: Any) -> actors_pb2.SubscribeActorEventsRequestAlpha1:
        if self._closed:
            raise Unavailable(f"{self.description} closed")
        request_id = str(next(self._ids))
        kind, message = next(iter(request.items()))
        message.id = request_id
        future: asyncio.Future[actors_pb2.SubscribeActorEventsRequestAlpha1] = (
            asyncio.get_running_loop().create_future())
        self._pending[request_id] = future
        try:
            await self._send(actors_pb2.SubscribeActorEventsResponseAlpha1(**{kind: message}))
            async with asyncio.timeout(CALL_TIMEOUT_SECONDS):
                return await future
        except TimeoutError:
            raise DeadlineExceeded(f"{self.description}: no answer within "
                                   f"{CALL_TIMEOUT_SECONDS:g}s") from None
        finally:
            self._pending.pop(request_id, None)

    def _failed(self, answer: actors_pb2.SubscribeActorEventsRequestAlpha1,
                method: str) -> PylottoError:
        """A ``request_failed`` answer as daprd's gRPC transport reads it."""
        failed = answer.request_failed
        if failed.code == _STATUS_NOT_FOUND:
            return NotFound(f"actor method not found: {method}", where="actors.invoke")
        return Internal(f"error from actor service: {failed.message}", where="actors.invoke")

    async def invoke(self, call: ActorCall, reentrancy_id: str | None) -> ActorAnswer:
        metadata = {k: v for k, v in passed_headers(call.headers)
                    if k.lower() != REENTRANCY_HEADER.lower()}
        if call.content_type:
            metadata["content-type"] = call.content_type
        if reentrancy_id:
            metadata[REENTRANCY_HEADER] = reentrancy_id
        answer = await self._request(invoke_request=(
            actors_pb2.SubscribeActorEventsResponseInvokeRequestAlpha1(
                actor_type=call.actor.type, actor_id=call.actor.id, method=call.method,
                data=call.data, metadata=metadata)))
        if answer.WhichOneof("request_type") == "request_failed":
            raise self._failed(answer, call.method)
        response = answer.invoke_response
        content_type = next((v for k, v in response.metadata.items()
                             if k.lower() == "content-type"), "")
        headers = tuple((k, v) for k, v in response.metadata.items()
                        if k.lower() != "content-type")
        if response.error:  # marked as over HTTP, so the callers see the same answer
            headers = (*headers, (ACTOR_ERROR_HEADER, "true"))
        return ActorAnswer(status=200, data=response.data, content_type=content_type,
                           headers=headers, actor_error=response.error)

    async def tick(self, tick: Tick) -> TickOutcome:
        data = _bytes_any(tick.data)
        try:
            if tick.kind is TickKind.TIMER:
                answer = await self._request(timer_request=(
                    actors_pb2.SubscribeActorEventsResponseTimerRequestAlpha1(
                        actor_type=tick.actor.type, actor_id=tick.actor.id, name=tick.name,
                        due_time=tick.due_time, period=tick.period, callback=tick.callback,
                        data=data)))
            else:
                answer = await self._request(reminder_request=(
                    actors_pb2.SubscribeActorEventsResponseReminderRequestAlpha1(
                        actor_type=tick.actor.type, actor_id=tick.actor.id, name=tick.name,
                        due_time=tick.due_time, period=tick.period, data=data)))
        except (Unavailable, DeadlineExceeded) as exc:
            log.warning("%s: %s %s not delivered: %s", self.description, tick.kind.value,
                        tick.name, exc.message)
            return TickOutcome(delivered=False)
        kind = answer.WhichOneof("request_type")
        if kind == "request_failed":
            log.warning("%s: %s %s failed: (%d) %s", self.description, tick.kind.value,
                        tick.name, answer.request_failed.code, answer.request_failed.message)
            return TickOutcome(delivered=False)
        response = answer.timer_response if kind == "timer_response" else answer.reminder_response
        return TickOutcome(delivered=True, cancel=response.cancel)

    async def deactivate(self, actor: ActorRef) -> bool:
        if self._closed:  # the app went with its stream: nothing to tell it
            log.debug("%s closed: %s not told of its deactivation", self.description, actor.key)
            return False
        try:
            answer = await self._request(deactivate_request=(
                actors_pb2.SubscribeActorEventsResponseDeactivateRequestAlpha1(
                    actor_type=actor.type, actor_id=actor.id)))
        except PylottoError as exc:
            log.warning("%s: deactivating %s failed: %s", self.description, actor.key,
                        exc.message)
            return False
        if answer.WhichOneof("request_type") == "request_failed":
            log.warning("%s: deactivating %s failed: (%d) %s", self.description, actor.key,
                        answer.request_failed.code, answer.request_failed.message)
            return False
        return True
