"""CloudEvents 1.0 envelopes: built on publish, opened on delivery (Layotto/Dapr rules).

Publish (:func:`new_envelope`): ``data`` holds the parsed JSON for a JSON content type, the
text for a textual one and ``data_base64`` for ``application/octet-stream`` — or whenever the
bytes cannot travel as JSON or text (invalid JSON, invalid UTF-8), so every payload comes back
byte for byte. ``application/cloudevents+json`` payloads pass through
(:func:`from_cloud_event`). ``ttlInSeconds`` becomes an ``expiration`` attribute unless the
broker expires messages itself.

Delivery (:func:`to_topic_event`): a JSON object with a ``specversion`` is a CloudEvent; any
other payload (a foreign producer, ``rawPayload``) is wrapped as an ``application/octet-stream``
event with a fresh id.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pylotto.appchannel.base import TopicEvent
from pylotto.core.errors import InvalidArgument
from pylotto.core.json_input import NotJson, decode_json
from pylotto.core.metadata import TTL_IN_SECONDS, parse_ttl_seconds

SPEC_VERSION = "1.0"
DEFAULT_SOURCE = "pylotto"
DEFAULT_TYPE = "com.dapr.event.sent"
"""The CloudEvent type of a publish: daprd's, and Layotto's (components-contrib v1.5.2's
envelope); apps and SDKs that check it see the same value."""
DEFAULT_CONTENT_TYPE = "text/plain"
CLOUDEVENT_CONTENT_TYPE = "application/cloudevents+json"
OCTET_STREAM = "application/octet-stream"

RAW_PAYLOAD = "rawPayload"

ID = "id"
SOURCE = "source"
TYPE = "type"
SPECVERSION = "specversion"
DATACONTENTTYPE = "datacontenttype"
DATA = "data"
DATA_BASE64 = "data_base64"
TOPIC = "topic"
PUBSUBNAME = "pubsubname"
TRACEID = "traceid"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
EXPIRATION = "expiration"

_TRUTHY = frozenset({"1", "true", "t", "y", "yes", "on"})

Envelope = dict[str, Any]


def media_type(content_type: str) -> str:
    """``"Application/JSON; charset=utf-8"`` → ``"application/json"``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_cloudevent_content_type(content_type: str) -> bool:
    return media_type(content_type) == CLOUDEVENT_CONTENT_TYPE


def is_json_content_type(content_type: str) -> bool:
    kind = media_type(content_type)
    return kind == "application/json" or kind.endswith("+json")


def is_text_content_type(content_type: str) -> bool:
    kind = media_type(content_type)
    return kind.startswith("text/") or kind == "application/xml"


def is_binary_content_type(content_type: str) -> bool:
    return media_type(content_type) == OCTET_STREAM


def _lookup(metadata: Mapping[str, str], key: str) -> str | None:
    wanted = key.lower()
    for name, value in metadata.items():
        if name.lower() == wanted:
            return value
    return None


def raw_payload(metadata: Mapping[str, str]) -> bool:
    """True when ``rawPayload`` metadata asks for no envelope."""
    value = _lookup(metadata, RAW_PAYLOAD)
    return value is not None and value.strip().lower() in _TRUTHY


def ttl_seconds(metadata: Mapping[str, str]) -> int | None:
    """``ttlInSeconds`` as a positive integer of at most
    :data:`~pylotto.core.metadata.MAX_TTL_SECONDS`, None when absent; InvalidArgument when
    bad."""
    value = _lookup(metadata, TTL_IN_SECONDS)
    if value is None or value == "":
        return None
    return parse_ttl_seconds(value, minimum=1)


def _set_data(envelope: Envelope, data: bytes, content_type: str) -> None:
    if not is_binary_content_type(content_type):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if not is_json_content_type(content_type):
                envelope[DATA] = text
                return
            try:
                envelope[DATA] = decode_json(text, "the event data")
                return
            except NotJson:
                pass  # kept as bytes (JsonRefused, valid JSON beyond the bounds, is refused)
    envelope[DATA_BASE64] = base64.b64encode(data).decode("ascii")


def _set_trace(envelope: Envelope, trace_parent: str, trace_state: str) -> None:
    envelope[TRACEID] = trace_parent
    envelope[TRACEPARENT] = trace_parent
    if trace_state:
        envelope[TRACESTATE] = trace_state


def new_envelope(
    data: bytes,
    content_type: str,
    *,
    topic: str,
    pubsub_name: str,
    source: str = DEFAULT_SOURCE,
    event_type: str = DEFAULT_TYPE,
    event_id: str = "",
    trace_parent: str = "",
    trace_state: str = "",
) -> Envelope:
    """A new CloudEvent around ``data`` (id: a uuid4 unless given)."""
    content_type = content_type or DEFAULT_CONTENT_TYPE
    envelope: Envelope = {
        ID: event_id or str(uuid.uuid4()),
        SPECVERSION: SPEC_VERSION,
        DATACONTENTTYPE: content_type,
        SOURCE: source,
        TYPE: event_type,
        TOPIC: topic,
        PUBSUBNAME: pubsub_name,
    }
    _set_trace(envelope, trace_parent, trace_state)
    _set_data(envelope, data, content_type)
    return envelope


def from_cloud_event(
    data: bytes,
    *,
    topic: str,
    pubsub_name: str,
    source: str = DEFAULT_SOURCE,
    event_type: str = DEFAULT_TYPE,
    trace_parent: str = "",
    trace_state: str = "",
) -> Envelope:
    """The app's own CloudEvent with ``topic``/``pubsubname`` overwritten, missing
    ``id``/``source``/``type``/``specversion`` filled in and the trace set when given."""
    try:
        envelope = decode_json(data, "the cloudevent")
    except InvalidArgument as exc:
        raise InvalidArgument(f"cannot create cloudevent: {exc.message}") from None
    if not isinstance(envelope, dict):
        raise InvalidArgument("cannot create cloudevent: the payload is not a JSON object")
    envelope[TOPIC] = topic
    envelope[PUBSUBNAME] = pubsub_name
    for key, default in (
        (ID, str(uuid.uuid4())), (SOURCE, source), (TYPE, event_type), (SPECVERSION, SPEC_VERSION)
    ):
        if envelope.get(key) is None:
            envelope[key] = default
    if trace_parent:
        _set_trace(envelope, trace_parent, trace_state)
    return envelope


def set_expiration(envelope: Envelope, ttl: int, now: datetime | None = None) -> None:
    """``expiration`` = now rounded up to the next second + ``ttl`` s (RFC 3339, UTC)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    envelope[EXPIRATION] = (moment + timedelta(seconds=ttl)).strftime("%Y-%m-%dT%H:%M:%SZ")


def has_expired(envelope: Mapping[str, Any], now: datetime | None = None) -> bool:
    """True when the envelope's ``expiration`` is in the past (an unreadable one never is)."""
    value = envelope.get(EXPIRATION)
    if not isinstance(value, str) or not value:
        return False
    try:
        expires = datetime.fromisoformat(value)
    except ValueError:
        return False
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires < (now or datetime.now(UTC))


def encode(envelope: Envelope) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _payload(envelope: Mapping[str, Any]) -> bytes:
    encoded = envelope.get(DATA_BASE64)
    if encoded is not None:
        if not isinstance(encoded, str):
            raise InvalidArgument("cloudevent field data_base64 is not a string")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgument(f"cloudevent field data_base64 is not base64: {exc}") from None
    data = envelope.get(DATA)
    if data is None:
        return b""
    if isinstance(data, str) and not is_json_content_type(_text(envelope.get(DATACONTENTTYPE))):
        return data.encode("utf-8")
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse(data: bytes) -> Envelope | None:
    """The CloudEvent in ``data``, or None when it is not one (not a JSON object with a
    ``specversion``)."""
    try:
        envelope = decode_json(data, "the message")
    except InvalidArgument:
        return None
    if not isinstance(envelope, dict) or not envelope.get(SPECVERSION):
        return None
    return envelope


def to_topic_event(
    data: bytes,
    *,
    topic: str,
    pubsub_name: str,
    metadata: Mapping[str, str],
    raw: bool = False,
    source: str = DEFAULT_SOURCE,
    event_type: str = DEFAULT_TYPE,
) -> TopicEvent:
    """The event to hand the app for a message of ``topic``; ``raw`` skips envelope parsing.
    InvalidArgument when the CloudEvent cannot be decoded (such a message is undeliverable)."""
    envelope = None if raw else parse(data)
    if envelope is None:
        envelope = new_envelope(
            data, OCTET_STREAM, topic=topic, pubsub_name=pubsub_name,
            source=source, event_type=event_type,
        )
        payload = bytes(data)
    else:
        payload = _payload(envelope)
    return TopicEvent(
        id=_text(envelope.get(ID)) or str(uuid.uuid4()),
        source=_text(envelope.get(SOURCE)),
        type=_text(envelope.get(TYPE)),
        spec_version=_text(envelope.get(SPECVERSION)),
        data_content_type=_text(envelope.get(DATACONTENTTYPE)),
        topic=topic,
        pubsub_name=pubsub_name,
        data=payload,
        metadata=dict(metadata),
        cloud_event=envelope,
    )
