"""The aiohttp application of Dapr's HTTP API: routes, errors as Dapr writes them.

Errors answer as daprd's HTTP API does (:mod:`pylotto.core.dapr_errors`): Dapr's status,
``errorCode`` and message, and for Dapr's rich errors the ``details`` array; a malformed
JSON body is 400 ``ERR_MALFORMED_REQUEST``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from google.protobuf import json_format
from google.rpc import status_pb2  # type: ignore[import-untyped]

from pylotto.capabilities.services import CapabilityServices
from pylotto.capabilities.status import RuntimeStatus
from pylotto.core import dapr_errors
from pylotto.core.errors import AppStatus, Internal, InvalidArgument, NotFound, PylottoError
from pylotto.facades.dapr.http import (
    actors,
    configuration,
    crypto,
    invoke,
    jobs,
    lifecycle,
    pubsub,
    resources,
    state,
    workflows,
)
from pylotto.facades.dapr.http.keys import GUARDS_KEY, SERVICES_KEY, STATUS_KEY, Guards
from pylotto.observability import span_attributes
from pylotto.observability.throttled import ThrottledLog
from pylotto.observability.tracing import carrier_from
from pylotto.security import tokens as security

log = logging.getLogger("pylotto.dapr.http")
_failures = ThrottledLog(log)
"""An internal error's traceback, once per route, exception type and interval."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(err: PylottoError, app_id: str = "") -> web.Response:
    """``err`` as daprd's HTTP API answers it (:func:`pylotto.core.dapr_errors.render`); an
    app's own gRPC status (:func:`app_status_response`) as daprd passes it on."""
    if err.app_status is not None:
        return app_status_response(err.app_status)
    rendered = dapr_errors.render(err, "http", app_id=app_id)
    if rendered.plain_text:
        return web.Response(text=rendered.message + "\n", status=rendered.http_status,
                            headers={"X-Content-Type-Options": "nosniff"})
    return web.json_response(rendered.http_body(), status=rendered.http_status)


def app_status_response(app_status: AppStatus) -> web.Response:
    """A gRPC app's error status to an HTTP caller of service invocation, as daprd answers it
    (pkg/api/http/directmessaging.go): the HTTP status of the code (grpc-gateway's table) and
    the status as protojson, ``{"code": <gRPC code>, "message": ..., "details": [...]}``,
    without a ``Content-Type`` of daprd's own, which Go's net/http then sniffs as
    ``text/plain; charset=utf-8``. Details of a type not known here: 500
    ``ERR_MALFORMED_RESPONSE``, as daprd's failing marshal."""
    status = status_pb2.Status()
    status.ParseFromString(app_status.status)
    try:
        body = json.dumps(json_format.MessageToDict(status), separators=(",", ":"))
    except (json_format.Error, TypeError) as exc:
        return web.json_response({"errorCode": "ERR_MALFORMED_RESPONSE", "message": str(exc)},
                                 status=500)
    return web.Response(body=body.encode(), status=HTTP_STATUS_OF_CODE.get(status.code, 500),
                        content_type="text/plain", charset="utf-8")


HTTP_STATUS_OF_CODE: dict[int, int] = {
    0: 200, 1: 408, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 16: 401, 8: 429, 9: 400,
    10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500}
"""gRPC code → HTTP status, dapr/dapr pkg/messaging/v1 ``HTTPStatusFromCode``."""


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PylottoError as err:
        return error_response(err, request.app[SERVICES_KEY].context.app_id)
    except json.JSONDecodeError as exc:
        return error_response(InvalidArgument(f"request body is not valid JSON: {exc}",
                                              where="http.body", detail=str(exc)))
    except HttpProcessingError as exc:  # a body the parser refused (bad chunking, encoding)
        return error_response(InvalidArgument(f"malformed request: {exc.message}",
                                              where="http.body", detail=exc.message))
    except web.HTTPException:
        raise
    except Exception as exc:
        route = request.match_info.route.resource
        where = route.canonical if route is not None else "?"
        _failures.log(logging.ERROR, f"{request.method} {where} {type(exc).__name__}",
                      "%s %s failed", request.method, request.path, exc_info=exc)
        return error_response(Internal("internal error"))


@web.middleware
async def api_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse calls without the sidecar's API token (health checks exempt)."""
    expected = request.app[GUARDS_KEY].api_token
    if expected and request.path not in security.EXEMPT_HTTP_PATHS:
        refusal = security.check_token(expected, request.headers.get(security.TOKEN_HEADER))
        if refusal is not None:
            return error_response(refusal)
    return await handler(request)


@web.middleware
async def api_allowlist(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A route the API allow/deny lists refuse answers 404, as if Dapr had not registered
    it (:mod:`pylotto.security.api_allowlist`)."""
    access = request.app[GUARDS_KEY].api_access
    if access is not None and not access.allows_http(request.path):
        return error_response(NotFound(f"{request.method} {request.path}: requested endpoint "
                                       "is not available"))
    return await handler(request)


API_NAMES = {
    "invoke": "InvokeService", "publish": "PublishEvent", "bulk_publish": "BulkPublishEvent",
    "get_state": "GetState", "save_state": "SaveState", "delete_state": "DeleteState",
    "bulk_get": "GetBulkState", "transaction": "ExecuteStateTransaction",
    "query": "QueryStateAlpha1", "invoke_binding": "InvokeBinding", "get_secret": "GetSecret",
    "get_bulk_secret": "GetBulkSecret", "get_configuration": "GetConfiguration",
    "subscribe_configuration": "SubscribeConfiguration",
    "unsubscribe_configuration": "UnsubscribeConfiguration",
    "try_lock": "TryLockAlpha1", "unlock": "UnlockAlpha1", "get_metadata": "GetMetadata",
    "set_metadata": "SetMetadata", "shutdown": "Shutdown",
    "invoke_actor": "InvokeActor", "get_actor_state": "GetActorState",
    "actor_transaction": "ExecuteActorStateTransaction",
    "register_actor_reminder": "RegisterActorReminder",
    "unregister_actor_reminder": "UnregisterActorReminder",
    "get_actor_reminder": "GetActorReminder", "register_actor_timer": "RegisterActorTimer",
    "unregister_actor_timer": "UnregisterActorTimer",
}
"""HTTP handler → the RPC name rate limits are written with (the same for both APIs)."""


@web.middleware
async def rate_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    limiter = request.app[GUARDS_KEY].rate_limiter
    name = getattr(request.match_info.handler, "__name__", "")
    if limiter is not None and name in API_NAMES:
        try:
            limiter.admit(API_NAMES[name], request.app[SERVICES_KEY].context.app_id)
        except PylottoError as err:
            return error_response(err)
    return await handler(request)


@web.middleware
async def measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    guards = request.app[GUARDS_KEY]
    metrics = guards.metrics
    name = getattr(request.match_info.handler, "__name__", "")
    api = API_NAMES.get(name, name or "unknown")
    in_flight = metrics.api_in_flight.labels("http")
    in_flight.inc()
    started = time.perf_counter()
    status, sent = 500, 0
    try:
        with guards.tracing.span(f"{request.method} {api}", "server",
                                  carrier_from(request.headers.items()),
                                  **span_attributes.http_server(request.method, request.path,
                                                                api)) as current:
            response = await handler(request)
            span_attributes.http_status(current, response.status)
        status, sent = response.status, response.content_length or 0
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        in_flight.dec()
        seconds = time.perf_counter() - started
        metrics.api_call("http", api, str(status), seconds)
        metrics.dapr.http_served(request.method, request.path, status,
                                 request.content_length or 0, sent, seconds)


def build_app(services: CapabilityServices, status: RuntimeStatus,
              guards: Guards, max_body_bytes: int = 64 * 1024 * 1024) -> web.Application:
    """The Dapr HTTP API over ``services``; ``status`` answers the metadata, health and
    shutdown routes; a request body over ``max_body_bytes`` is refused (413)."""
    app = web.Application(middlewares=[measured, api_token, api_allowlist, rate_limits, errors],
                          client_max_size=max_body_bytes)
    app[SERVICES_KEY] = services
    app[STATUS_KEY] = status
    app[GUARDS_KEY] = guards
    for module in (lifecycle, state, pubsub, invoke, resources, jobs, actors, workflows,
                   crypto):
        module.add_routes(app.router)
    configuration.setup(app)
    return app
