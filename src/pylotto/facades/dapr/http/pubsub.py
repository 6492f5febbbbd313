"""Publishing: ``/v1.0/publish/{pubsub}/{topic}`` and bulk publish (stable and alpha paths).

The body is the event data as is; its ``Content-Type`` becomes the CloudEvent's
``datacontenttype`` (``application/cloudevents+json`` publishes the app's own CloudEvent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

from pylotto.capabilities.pubsub import BulkPublishItem, PublishRequest
from pylotto.core.errors import PARTIAL_BULK_PUBLISH, InvalidArgument
from pylotto.facades.dapr.http.keys import json_of, metadata_params, services_of


async def publish(request: web.Request) -> web.Response:
    await services_of(request).pubsub.publish(PublishRequest(
        pubsub_name=request.match_info["pubsub"],
        topic=request.match_info["topic"],
        data=await request.read(),
        data_content_type=request.headers.get("Content-Type", ""),
        metadata=metadata_params(request),
        trace_parent=request.headers.get("traceparent", ""),
        trace_state=request.headers.get("tracestate", ""),
    ))
    return web.Response(status=204)


def _entry(raw: object) -> BulkPublishItem:
    if not isinstance(raw, Mapping):
        raise InvalidArgument("each bulk publish entry is an object")
    event = raw.get("event")
    content_type = str(raw.get("contentType") or "")
    if isinstance(event, str) and not content_type.endswith("json"):
        data = event.encode()  # text as is
    else:
        data = json.dumps(event).encode()
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument("bulk publish entry metadata is an object")
    return BulkPublishItem(str(raw.get("entryId") or ""), data, content_type,
                           {str(k): str(v) for k, v in metadata.items()})


async def bulk_publish(request: web.Request) -> web.Response:
    body = await json_of(request)
    if not isinstance(body, list):
        raise InvalidArgument("the body must be a JSON array of entries")
    failures = await services_of(request).pubsub.bulk_publish(
        request.match_info["pubsub"], request.match_info["topic"],
        [_entry(raw) for raw in body], metadata_params(request),
        trace_parent=request.headers.get("traceparent", ""),
        trace_state=request.headers.get("tracestate", ""),
    )
    if not failures:
        return web.Response(status=204)
    status, code = PARTIAL_BULK_PUBLISH
    return web.json_response({
        "failedEntries": [{"entryId": f.entry_id, "error": f.error} for f in failures],
        "errorCode": code,
    }, status=status)


def add_routes(router: web.UrlDispatcher) -> None:
    for method in ("POST", "PUT"):
        for version in ("v1.0", "v1.0-alpha1"):
            router.add_route(method, f"/{version}/publish/bulk/{{pubsub}}/{{topic:.+}}",
                             bulk_publish)
        router.add_route(method, "/v1.0/publish/{pubsub}/{topic:.+}", publish)
