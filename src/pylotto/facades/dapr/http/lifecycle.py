"""Health, metadata and shutdown: ``/v1.0/healthz``, ``/v1.0/healthz/outbound``,
``/v1.0/metadata``, ``/v1.0/shutdown``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pylotto.capabilities.actors.api import ActorStatus
from pylotto.facades.dapr.http.keys import status_of, utf8_text_of


def actor_runtime_json(actors: ActorStatus | None) -> dict[str, Any]:
    """``actorRuntime`` as daprd writes it (``activeActors`` and ``placement`` left out when
    empty), and the old alias ``actors`` (the active counts) when there are any."""
    if actors is None:
        return {}
    counts = [{"type": t, "count": n} for t, n in sorted(actors.active.items())]
    runtime: dict[str, Any] = {"runtimeStatus": actors.runtime_status}
    if counts:
        runtime["activeActors"] = counts
    runtime["hostReady"] = actors.host_ready
    if actors.placement:
        runtime["placement"] = actors.placement
    return {**({"actors": counts} if counts else {}), "actorRuntime": runtime}


async def healthz(request: web.Request) -> web.Response:
    """204 once every component is up (Dapr also waits for the app channel; pylotto's app
    channels connect lazily, so the sidecar is healthy as soon as it serves)."""
    return web.Response(status=204 if status_of(request).started else 500)


async def get_metadata(request: web.Request) -> web.Response:
    view = status_of(request).view()
    return web.json_response({
        "id": view.app_id,
        "runtimeVersion": view.runtime_version,
        "enabledFeatures": [],
        "components": [{"name": c.name, "type": c.type, "version": c.version,
                        "capabilities": c.features} for c in view.components],
        "subscriptions": [{"pubsubname": p, "topic": t, "type": kind}
                          for p, t, kind in view.subscriptions],
        "extended": view.extended,
        "appConnectionProperties": {"port": view.app_port, "protocol": view.app_protocol,
                                    "channelAddress": view.channel_address},
        **actor_runtime_json(view.actor_runtime),
        # daprd's omitzero: absent while no workflow worker is connected
        **({"workflows": {"connectedWorkers": view.connected_workers}}
           if view.connected_workers else {}),
    })


async def set_metadata(request: web.Request) -> web.Response:
    status_of(request).set_metadata(request.match_info["key"], await utf8_text_of(request))
    return web.Response(status=204)


async def shutdown(request: web.Request) -> web.Response:
    status_of(request).request_shutdown()
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1.0/healthz", healthz)
    router.add_get("/v1.0/healthz/outbound", healthz)
    router.add_get("/v1.0/metadata", get_metadata)
    router.add_put("/v1.0/metadata/{key}", set_metadata)
    router.add_route("*", "/v1.0/shutdown", shutdown)
