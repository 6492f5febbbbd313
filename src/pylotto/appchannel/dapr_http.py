"""Dapr's HTTP app channel: subscriptions from ``GET /dapr/subscribe``, events POSTed to the
subscription's route as CloudEvents.

``/dapr/subscribe`` answers a JSON array of ``{pubsubname, topic, route}`` (Dapr v1) or
``{pubsubname, topic, routes: {rules: [{match, path}], default}}`` (v2), with optional
``metadata`` and ``deadLetterTopic``; 404 means the app subscribes to nothing. An event goes to
``POST /<path>`` (the route; the topic when the subscription has none) with
``Content-Type: application/cloudevents+json``. The answer: 2xx with ``{"status": "SUCCESS" |
"RETRY" | "DROP"}`` (an empty or unreadable body is SUCCESS), 404 drops the event, any other
status retries it.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pylotto.appchannel import cloudevents, message_metadata
from pylotto.appchannel.base import (
    AppChannel,
    BulkEntry,
    BulkSubscribe,
    DeliveryStatus,
    RouteRule,
    TopicEvent,
    TopicSubscription,
)
from pylotto.appchannel.http import AppRequest, HttpAppChannel
from pylotto.core.errors import Internal, InvalidArgument, Unsupported
from pylotto.core.json_input import decode_json

log = logging.getLogger("pylotto.appchannel.dapr_http")

SUBSCRIBE_PATH = "/dapr/subscribe"
LIST_TIMEOUT_SECONDS = 5.0
DELIVERY_TIMEOUT_SECONDS = 60.0


def parse_subscriptions(body: object) -> list[TopicSubscription]:
    """The subscriptions of a ``/dapr/subscribe`` answer; malformed entries are skipped."""
    if not isinstance(body, list):
        raise Internal(f"{SUBSCRIBE_PATH} answered {type(body).__name__}, not a JSON array")
    out = []
    for entry in body:
        if not isinstance(entry, Mapping):
            log.warning("%s: entry %r ignored: not an object", SUBSCRIBE_PATH, entry)
            continue
        routes = entry.get("routes") if isinstance(entry.get("routes"), Mapping) else {}
        assert isinstance(routes, Mapping)
        rules = tuple(RouteRule(str(r.get("match", "")), str(r.get("path", "")))
                      for r in routes.get("rules") or [] if isinstance(r, Mapping))
        metadata = entry.get("metadata") if isinstance(entry.get("metadata"), Mapping) else {}
        assert isinstance(metadata, Mapping)
        out.append(TopicSubscription(
            str(entry.get("pubsubname") or ""), str(entry.get("topic") or ""),
            {str(k): str(v) for k, v in metadata.items()},
            rules=rules,
            default_path=str(routes.get("default") or entry.get("route") or ""),
            dead_letter_topic=str(entry.get("deadLetterTopic") or ""),
            bulk=BulkSubscribe.from_spec(entry.get("bulkSubscribe")),
        ))
    return out


def _status(body: bytes) -> DeliveryStatus:
    try:
        answer: Any = decode_json(body, "the app's answer") if body.strip() else {}
    except InvalidArgument:
        return DeliveryStatus.SUCCESS
    status = answer.get("status") if isinstance(answer, Mapping) else None
    if not status:
        return DeliveryStatus.SUCCESS
    try:
        return DeliveryStatus[str(status).upper()]
    except KeyError:
        raise Internal(f"the app answered unknown status {status!r}") from None


class DaprHttpAppChannel(AppChannel):
    drops_unmatched = True
    supports_bulk = True

    def __init__(self, http: HttpAppChannel) -> None:
        self.http = http
        self.description = f"app at {http.base_url}"

    async def list_subscriptions(self) -> list[TopicSubscription]:
        response = await self.http.send(AppRequest("GET", SUBSCRIBE_PATH,
                                                   timeout=LIST_TIMEOUT_SECONDS))
        if response.status == 404:
            raise Unsupported(f"{self.description} has no {SUBSCRIBE_PATH}")
        if not 200 <= response.status < 300:
            raise Internal(f"{self.description}: {SUBSCRIBE_PATH} answered {response.status}")
        try:
            body = (decode_json(response.body, f"{SUBSCRIBE_PATH}'s answer")
                    if response.body.strip() else [])
        except InvalidArgument as exc:
            raise Internal(f"{self.description}: {exc.message}") from None
        return parse_subscriptions(body)

    async def deliver(self, event: TopicEvent) -> DeliveryStatus:
        """POST the CloudEvent, with its trace context as ``traceparent`` / ``tracestate``
        headers too (as Dapr's HTTP channel sends the delivery span's) and the message's
        metadata as headers (:mod:`pylotto.appchannel.message_metadata`)."""
        envelope = dict(event.cloud_event)
        trace = [(k, str(envelope[k])) for k in (cloudevents.TRACEPARENT, cloudevents.TRACESTATE)
                 if isinstance(envelope.get(k), str) and envelope[k]]
        response = await self.http.send(AppRequest(
            "POST", event.path or event.topic,
            headers=[("Content-Type", cloudevents.CLOUDEVENT_CONTENT_TYPE), *trace,
                     *message_metadata.http_headers(event)],
            body=json.dumps(envelope).encode(), timeout=DELIVERY_TIMEOUT_SECONDS,
        ))
        if response.status == 404:
            log.warning("%s: POST /%s answered 404: event %s dropped", self.description,
                        (event.path or event.topic).lstrip("/"), event.id)
            return DeliveryStatus.DROP
        if not 200 <= response.status < 300:
            raise Internal(f"{self.description}: event {event.id} answered {response.status}")
        return _status(response.body)

    async def deliver_bulk(self, entries: Sequence[BulkEntry], path: str, *,
                           raw: bool = False) -> dict[str, DeliveryStatus]:
        """POST Dapr's bulk envelope (``entries`` of ``{entryId, event, metadata,
        contentType}``) to ``path``; the answer ``{"statuses": [{entryId, status}]}``."""
        first = entries[0].event
        body = {
            "id": str(uuid.uuid4()), "type": BULK_EVENT_TYPE, "topic": first.topic,
            "pubsubname": first.pubsub_name, "metadata": {"pubsubName": first.pubsub_name},
            "entries": [_bulk_item(entry, raw) for entry in entries],
        }
        response = await self.http.send(AppRequest(
            "POST", path or first.topic, headers=[("Content-Type", "application/json")],
            body=json.dumps(body).encode(), timeout=DELIVERY_TIMEOUT_SECONDS))
        if response.status == 404:
            log.warning("%s: POST /%s answered 404: %d bulk entries dropped",
                        self.description, (path or first.topic).lstrip("/"), len(entries))
            return {entry.entry_id: DeliveryStatus.DROP for entry in entries}
        if not 200 <= response.status < 300:
            raise Internal(f"{self.description}: bulk delivery answered {response.status}")
        try:
            answer: Any = json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Internal(f"{self.description}: bulk delivery answer is not JSON: "
                           f"{exc}") from None
        statuses = answer.get("statuses") if isinstance(answer, Mapping) else None
        verdicts: dict[str, DeliveryStatus] = {}
        for item in statuses if isinstance(statuses, list) else []:
            if isinstance(item, Mapping):
                status = str(item.get("status") or "").upper()
                verdicts[str(item.get("entryId"))] = DeliveryStatus.__members__.get(
                    status, DeliveryStatus.RETRY)  # empty or unknown: retry, as Dapr
        return verdicts

    async def close(self) -> None:
        await self.http.close()


BULK_EVENT_TYPE = "com.dapr.event.sent.bulk"


def _bulk_item(entry: BulkEntry, raw: bool) -> dict[str, Any]:
    """One entry as Dapr sends it: the CloudEvent, or a raw payload in base64."""
    event = entry.event
    return {
        "entryId": entry.entry_id,
        "event": base64.b64encode(event.data).decode() if raw else dict(event.cloud_event),
        "metadata": dict(event.metadata),
        "contentType": (event.data_content_type or cloudevents.OCTET_STREAM) if raw
        else cloudevents.CLOUDEVENT_CONTENT_TYPE,
    }
