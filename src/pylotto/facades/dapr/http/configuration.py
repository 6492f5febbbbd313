"""Dapr's HTTP configuration API (``/v1.0`` and ``/v1.0-alpha1``), as dapr/dapr serves it:

- ``GET /configuration/{store}?key=a&key=b``: ``{key: {"value", "version", "metadata"}}``
  (empty fields left out; 204 when no item exists).
- ``GET /configuration/{store}/subscribe?key=...``: ``{"id": ...}``. Each later change is
  POSTed to the app's ``/configuration/{store}/{key}``, once per changed key, with the whole
  update as the body: ``{"id", "items": {key: {...}}}`` (a deleted item is ``{}``). An app
  that does not answer 200 gets it again as the store's inbound resiliency policy says
  (``targets.components.<store>.inbound``; none: once), then it is logged and skipped.
- ``GET /configuration/{store}/{id}/unsubscribe``: ``{"ok": true}``; an unknown id answers 500
  ``{"ok": false, "message": ...}``.

A gRPC app (``--app-protocol grpc``) gets each update as daprd's app channel sends it
(pkg/api/http/http.go ``updateEventHandler`` over pkg/channel/grpc): ``AppCallback.OnInvoke``
with method ``/configuration/{store}/{key}``, the same JSON body as ``data`` (an ``Any``
without type), ``content_type`` ``application/json`` and verb ``POST``; an error status is a
failed delivery. *Departure:* daprd compares the gRPC answer's code (0) with HTTP's 200, so it
logs every delivery to a gRPC app as failed and, under a retry policy, sends it again; pylotto
takes ``OK`` as delivered.

Subscriptions need the app's port (``app.port``): without it subscribe answers 500
``ERR_APP_CHANNEL_NIL``. They end when unsubscribed or when the sidecar stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import quote

from aiohttp import web

from pylotto.appchannel.http import AppRequest, HttpAppChannel
from pylotto.capabilities.configuration import ConfigurationStream, ConfigurationUpdate
from pylotto.components.configuration.base import ConfigurationItem
from pylotto.core.errors import Internal, NotConfigured, PylottoError
from pylotto.core.resiliency import Resiliency
from pylotto.core.tasks import stop_task
from pylotto.facades.dapr.http.keys import metadata_params, services_of

if TYPE_CHECKING:
    from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel

log = logging.getLogger("pylotto.dapr.configuration")

DELIVERY_TIMEOUT_SECONDS = 30.0

AppTarget: TypeAlias = "HttpAppChannel | DaprGrpcAppChannel"
"""Where a subscription's updates go: the app's HTTP routes or its ``OnInvoke``."""


def item_json(item: ConfigurationItem) -> dict[str, Any]:
    """Dapr's JSON of one item: empty fields are left out."""
    body: dict[str, Any] = {}
    if item.content:
        body["value"] = item.content
    if item.version:
        body["version"] = item.version
    if item.metadata:
        body["metadata"] = dict(item.metadata)
    return body


def items_json(items: Iterable[ConfigurationItem]) -> dict[str, Any]:
    return {item.key: item_json(item) for item in items}


class HttpSubscriptions:
    """The configuration subscriptions made over HTTP, by id: each a stream of updates and the
    task that POSTs them to the app."""

    def __init__(self) -> None:
        self._active: dict[str, tuple[ConfigurationStream, asyncio.Task[None]]] = {}

    def add(self, subscription_id: str, store: str, stream: ConfigurationStream,
            app: AppTarget, resiliency: Resiliency) -> None:
        task = asyncio.create_task(
            self._forward(subscription_id, store, stream, app, resiliency),
            name=f"configuration-http:{subscription_id}")
        self._active[subscription_id] = (stream, task)

    async def remove(self, subscription_id: str) -> bool:
        entry = self._active.pop(subscription_id, None)
        if entry is None:
            return False
        stream, task = entry
        await stream.close()
        await stop_task(task)
        return True

    async def close(self) -> None:
        for subscription_id in list(self._active):
            await self.remove(subscription_id)

    async def _forward(self, subscription_id: str, store: str, stream: ConfigurationStream,
                       app: AppTarget, resiliency: Resiliency) -> None:
        try:
            async for update in stream:
                await self._post(subscription_id, store, update, app, resiliency)
        except PylottoError as exc:
            log.warning("configuration subscription %s on store %s ended: %s",
                        subscription_id, store, exc.message)
        finally:
            self._active.pop(subscription_id, None)

    @staticmethod
    async def _post(subscription_id: str, store: str, update: ConfigurationUpdate,
                    app: AppTarget, resiliency: Resiliency) -> None:
        body = json.dumps({"id": subscription_id, "items": items_json(update.items)}).encode()
        for key in dict.fromkeys(item.key for item in update.items):
            async def send(key: str = key) -> None:
                if not isinstance(app, HttpAppChannel):  # a gRPC app: daprd's method, as is
                    await app.invoke(f"/configuration/{store}/{key}", body, "application/json",
                                     "POST", "", DELIVERY_TIMEOUT_SECONDS)
                    return
                response = await app.send(AppRequest(
                    "POST", f"/configuration/{quote(store, safe='')}/{quote(key, safe='')}",
                    headers=[("Content-Type", "application/json")], body=body,
                    timeout=DELIVERY_TIMEOUT_SECONDS))
                if response.status != 200:
                    raise Internal("error sending configuration item to application, status "
                                   f"{response.status}")

            try:
                await resiliency.call_inbound(store, send)
            except PylottoError as exc:
                log.error("error sending configuration item to the app: %s", exc.message)


SUBSCRIPTIONS_KEY: web.AppKey[HttpSubscriptions] = web.AppKey("configuration_subscriptions",
                                                              HttpSubscriptions)


async def get_configuration(request: web.Request) -> web.Response:
    items = await services_of(request).configuration.get_configuration(
        request.match_info["store"], keys=request.query.getall("key", []),
        metadata=metadata_params(request))
    if not items:
        return web.Response(status=204)
    return web.json_response(items_json(items))


async def subscribe_configuration(request: web.Request) -> web.Response:
    services = services_of(request)
    store = request.match_info["store"]
    configuration = services.configuration
    configuration.components.get(store)  # not configured / not found: the usual errors
    app: AppTarget | None = services.invoke.grpc_app_channel or services.invoke.http_app_channel
    if app is None:
        raise NotConfigured("app channel is not initialized", where="configuration.app_channel")
    keys = request.query.getall("key", [])
    stream = configuration.open_stream()
    try:
        await stream.subscribe(store, keys=keys, metadata=metadata_params(request))
    except PylottoError:  # tagged configuration.subscribe: the table says how daprd answers
        await stream.close()
        raise
    subscription_id = str(uuid.uuid4())
    request.app[SUBSCRIPTIONS_KEY].add(subscription_id, store, stream, app,
                                       configuration.resiliency)
    return web.json_response({"id": subscription_id})


async def unsubscribe_configuration(request: web.Request) -> web.Response:
    store = request.match_info["store"]
    services_of(request).configuration.components.get(store)
    subscription_id = request.match_info["id"]
    if await request.app[SUBSCRIPTIONS_KEY].remove(subscription_id):
        return web.json_response({"ok": True})
    return web.json_response(
        {"ok": False,
         "message": f"failed to unsubscribe to configuration request {subscription_id}: "
                    f"subscription with id {subscription_id} does not exist"}, status=500)


async def _close_subscriptions(app: web.Application) -> None:
    await app[SUBSCRIPTIONS_KEY].close()


def add_routes(router: web.UrlDispatcher) -> None:
    for version in ("v1.0", "v1.0-alpha1"):
        router.add_get(f"/{version}/configuration/{{store}}", get_configuration)
        router.add_get(f"/{version}/configuration/{{store}}/subscribe",
                       subscribe_configuration)
        router.add_get(f"/{version}/configuration/{{store}}/{{id}}/unsubscribe",
                       unsubscribe_configuration)


def setup(app: web.Application) -> None:
    app[SUBSCRIPTIONS_KEY] = HttpSubscriptions()
    app.on_shutdown.append(_close_subscriptions)
    add_routes(app.router)
