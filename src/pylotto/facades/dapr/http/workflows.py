"""The workflow management API over HTTP, as daprd's ``pkg/api/http/workflow.go``: 7 routes
under each of ``/v1.0-alpha1``, ``/v1.0-beta1`` and ``/v1.0``, component segment ``dapr``.

- ``POST /{v}/workflows/dapr/{name}/start?instanceID=&appID=``, body = the raw input:
  202 ``{"instanceID": …}``.
- ``GET /{v}/workflows/dapr/{instanceID}``: 200 with the GetWorkflowResponse JSON; an unknown
  instance is 404 ``ERR_INSTANCE_ID_NOT_FOUND``.
- ``POST …/{instanceID}/terminate``, ``/raiseEvent/{eventName}`` (body = the raw event data),
  ``/pause``, ``/resume``, ``/purge``: 202, empty body.
"""

from __future__ import annotations

from aiohttp import web
from google.protobuf import json_format

from pylotto.capabilities.workflows import Workflows
from pylotto.core.errors import NotFound
from pylotto.facades.dapr import workflows as management
from pylotto.facades.dapr.http.keys import services_of

VERSIONS = ("v1.0-alpha1", "v1.0-beta1", "v1.0")


def _ids(request: web.Request) -> tuple[Workflows, str, str, str]:
    services = services_of(request)
    return (services.workflows, services.context.app_id,
            request.match_info.get("instance", ""), request.query.get("appID", ""))


async def start(request: web.Request) -> web.Response:
    workflows, own, _, app_id = _ids(request)
    data = await request.read()
    instance_id = await management.start(workflows, own, request.query.get("instanceID", ""),
                                         request.match_info["name"], data, {}, app_id)
    return web.json_response({"instanceID": instance_id}, status=202)


async def get(request: web.Request) -> web.Response:
    workflows, own, instance_id, app_id = _ids(request)
    response = await management.get(workflows, own, instance_id, app_id)
    if not response.runtime_status:
        raise NotFound(f"unable to find workflow: {instance_id}", where="workflows.not_found",
                       instance_id=instance_id)
    return web.json_response(json_format.MessageToDict(response))


async def terminate(request: web.Request) -> web.Response:
    workflows, own, instance_id, app_id = _ids(request)
    await management.terminate(workflows, own, instance_id, app_id)
    return web.Response(status=202)


async def raise_event(request: web.Request) -> web.Response:
    workflows, own, instance_id, app_id = _ids(request)
    data = await request.read()
    await management.raise_event(workflows, own, instance_id, request.match_info["event"],
                                 data, app_id)
    return web.Response(status=202)


async def pause(request: web.Request) -> web.Response:
    workflows, own, instance_id, app_id = _ids(request)
    await management.pause(workflows, own, instance_id, app_id)
    return web.Response(status=202)


async def resume(request: web.Request) -> web.Response:
    workflows, own, instance_id, app_id = _ids(request)
    await management.resume(workflows, own, instance_id, app_id)
    return web.Response(status=202)


async def purge(request: web.Request) -> web.Response:
    workflows, own, instance_id, app_id = _ids(request)
    await management.purge(workflows, own, instance_id, app_id)
    return web.Response(status=202)


def add_routes(router: web.UrlDispatcher) -> None:
    for version in VERSIONS:
        base = f"/{version}/workflows/dapr"
        router.add_post(f"{base}/{{name}}/start", start)
        router.add_get(f"{base}/{{instance}}", get)
        router.add_post(f"{base}/{{instance}}/terminate", terminate)
        router.add_post(f"{base}/{{instance}}/raiseEvent/{{event}}", raise_event)
        router.add_post(f"{base}/{{instance}}/pause", pause)
        router.add_post(f"{base}/{{instance}}/resume", resume)
        router.add_post(f"{base}/{{instance}}/purge", purge)
