"""Publishing: ``/v1.0/publish/{pubsub}/{topic}`` and bulk publish (stable and alpha paths).

The body is the event data as is; its ``Content-Type`` becomes the CloudEvent's
``datacontenttype`` (``application/cloudevents+json`` publishes the app's own CloudEvent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web

from pylotto.capabilities.pubsub import BulkPublishItem, PublishRequest
from pylotto.components.pubsub.base import BulkPublishFailure
from pylotto.core.dapr_errors import go_error_string, render
from pylotto.core.errors import PARTIAL_BULK_PUBLISH, Internal, InvalidArgument
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
    return _partial(request.match_info["pubsub"], request.match_info["topic"], failures)


def _go_json(value: object) -> str:
    """``value`` as Go's ``json.Marshal`` writes it: compact, UTF-8, ``<>&`` escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _partial(pubsub_name: str, topic: str, failures: list[BulkPublishFailure]) -> web.Response:
    """daprd's answer to a bulk publish some entries of which the broker refused: the failed
    entries (``error`` left out when empty) and ``errorCode`` as the body, the same JSON in
    the ``metadata.responseData`` header and the publish error of the first in
    ``metadata.error``."""
    status, code = PARTIAL_BULK_PUBLISH
    body = _go_json({
        "failedEntries": [{"entryId": f.entry_id, **({"error": f.error} if f.error else {})}
                          for f in failures],
        "errorCode": code,
    })
    error = render(Internal(failures[0].error, where="pubsub.publish", name=pubsub_name,
                            topic=topic), "http")
    headers = {name: " ".join(value.splitlines()) for name, value in (
        ("metadata.responseData", body), ("metadata.error", go_error_string(error)))}
    return web.Response(status=status, text=body, content_type="application/json",
                        headers=headers)


def add_routes(router: web.UrlDispatcher) -> None:
    for method in ("POST", "PUT"):
        for version in ("v1.0", "v1.0-alpha1"):
            router.add_route(method, f"/{version}/publish/bulk/{{pubsub}}/{{topic:.+}}",
                             bulk_publish)
        router.add_route(method, "/v1.0/publish/{pubsub}/{topic:.+}", publish)
