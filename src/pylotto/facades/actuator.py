"""Actuator HTTP endpoints (Layotto's ``/actuator/...``) for probes and operators.

With an API token, only the probes (and ``/metrics`` unless configured otherwise) answer
without it: see :mod:`pylotto.security.tokens`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from pylotto.capabilities.status import RuntimeStatus
from pylotto.core.errors import InvalidArgument, PylottoError, dapr_error_code, http_status
from pylotto.core.json_input import decode_json
from pylotto.facades import dashboard
from pylotto.observability.metrics import Metrics
from pylotto.security import tokens
from pylotto.version import __version__

STATUS_KEY: web.AppKey[RuntimeStatus] = web.AppKey("status", RuntimeStatus)
METRICS_KEY: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
STOPPING_KEY: web.AppKey[list[bool]] = web.AppKey("stopping", list)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_guard(api_token: str, *, metrics_require_token: bool) -> list[Middleware]:
    """The middleware refusing calls without ``api_token`` (none when there is no token)."""
    if not api_token:
        return []

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not tokens.actuator_exempt(request.path, metrics_require_token=metrics_require_token):
            given = request.headers.get(tokens.TOKEN_HEADER) or dashboard.given_token(request)
            if request.path == tokens.METRICS_PATH:
                given = tokens.scrape_token(given, request.headers.get("Authorization"))
            refusal = tokens.check_token(api_token, given)
            if refusal is not None:
                return web.json_response({"errorCode": dapr_error_code(refusal),
                                          "message": refusal.message},
                                         status=http_status(refusal))
        return await handler(request)

    return [guard]


def _overall(statuses: list[str]) -> str:
    if "DOWN" in statuses:
        return "DOWN"
    if "INIT" in statuses:
        return "INIT"
    return "UP"


def _answer(components: dict[str, dict[str, Any]]) -> web.Response:
    status = _overall([c["status"] for c in components.values()])
    body = {"status": status, "components": components}
    return web.json_response(body, status=200 if status == "UP" else 503)


def _startup(request: web.Request) -> dict[str, Any]:
    status = request.app[STATUS_KEY]
    if request.app[STOPPING_KEY][0]:
        return {"status": "DOWN", "details": {"reason": "shutting down"}}
    if not status.started:
        return {"status": "INIT", "details": {"reason": "starting"}}
    # Layotto's runtime_startup indicator carries {"reason": ""} when up; kept for its probes
    return {"status": "UP", "details": {"reason": "",
                                        "uptime_seconds": round(time.time() - status.started_at)}}


async def liveness(request: web.Request) -> web.Response:
    return _answer({"runtime_startup": _startup(request)})


async def readiness(request: web.Request) -> web.Response:
    status = request.app[STATUS_KEY]
    components = {"runtime_startup": _startup(request)}
    if status.started and not status.listening:
        components["runtime_startup"] = {"status": "INIT",
                                         "details": {"reason": "opening the API listeners"}}
    if status.started:
        health = await status.readiness()
        components.update({label: h.as_json() for label, h in health.items()})
    return _answer(components)


async def info(request: web.Request) -> web.Response:
    """What is loaded: the app, the config's source, every running component (its type as
    configured and in Dapr's spelling, version, features) and the active subscriptions."""
    status = request.app[STATUS_KEY]
    config = status.config
    view = status.view()
    running = {(c.capability, c.name): c for c in view.components}
    components = []
    for spec in config.components:
        described = running.get((spec.capability, spec.name))
        components.append({
            "capability": spec.capability, "name": spec.name, "type": spec.type,
            **({"dapr_type": described.type, "version": described.version,
                "features": described.features} if described else {}),
        })
    subscriptions = [{"pubsubname": p, "topic": t, "type": how}
                     for p, t, how in view.subscriptions]
    return web.json_response({
        "app": {"name": "pylotto", "version": __version__, "app_id": view.app_id,
                "pid": os.getpid()},
        "config": config.source,
        "components": components,
        "subscriptions": subscriptions,
    })


async def metrics(request: web.Request) -> web.Response:
    from pylotto.observability.metrics import CONTENT_TYPE

    return web.Response(body=request.app[METRICS_KEY].exposition(),
                        headers={"Content-Type": CONTENT_TYPE})


async def loggers(request: web.Request) -> web.Response:
    """GET: the level of pylotto's loggers; POST/PUT ``{"level": "debug"}``: change it now."""
    from pylotto.observability import logs

    if request.method != "GET":
        try:
            body = decode_json(await request.read(), "the request body")
            logs.set_level(str(body.get("level", "")) if isinstance(body, dict) else "")
        except ValueError:
            return web.json_response({"error": "expected {\"level\": \"debug\"}"},
                                     status=http_status(InvalidArgument("")))
        except PylottoError as err:
            return web.json_response({"error": err.message}, status=http_status(err))
    return web.json_response({"level": logs.current_level()})


async def not_found(request: web.Request) -> web.Response:
    return web.json_response({}, status=404)


def build_app(status: RuntimeStatus, measured: Metrics, *, serve_metrics: bool = True,
              api_token: str = "", metrics_require_token: bool = False,
              board: dashboard.Sources | None = None) -> web.Application:
    """The actuator over ``status``; ``/metrics`` exports ``measured`` (unless
    ``serve_metrics`` is False: metrics turned off); ``board``: what ``/dashboard`` shows
    (None: no dashboard)."""
    app = web.Application(middlewares=token_guard(
        api_token, metrics_require_token=metrics_require_token))
    app[STATUS_KEY] = status
    app[METRICS_KEY] = measured
    app[STOPPING_KEY] = [False]
    app.router.add_get("/actuator/health/liveness", liveness)
    app.router.add_get("/actuator/health/readiness", readiness)
    app.router.add_get("/actuator/info", info)
    if serve_metrics:
        app.router.add_get("/metrics", metrics)
    for method in ("GET", "POST", "PUT"):
        app.router.add_route(method, "/actuator/loggers", loggers)
    if board is not None:
        dashboard.add_routes(app, board)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def build_metrics_app(measured: Metrics, *, api_token: str = "",
                      metrics_require_token: bool = False) -> web.Application:
    """Only ``/metrics``: the listener of a Layotto config's prometheus metrics sink."""
    app = web.Application(middlewares=token_guard(
        api_token, metrics_require_token=metrics_require_token))
    app[METRICS_KEY] = measured
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
