import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from pylotto.appchannel import cloudevents as ce
from pylotto.core.errors import InvalidArgument


def envelope(data: bytes, content_type: str = "", **kw: str) -> dict[str, object]:
    return ce.new_envelope(data, content_type, topic="orders", pubsub_name="mem", **kw)


def test_new_envelope_attributes() -> None:
    env = envelope(b"hello", source="myapp", trace_parent="00-abc-def-01")
    assert uuid.UUID(str(env["id"])).version == 4
    assert env["specversion"] == "1.0"
    assert env["source"] == "myapp"
    assert env["type"] == "com.dapr.event.sent"
    assert env["datacontenttype"] == "text/plain"
    assert env["topic"] == "orders"
    assert env["pubsubname"] == "mem"
    assert env["traceparent"] == "00-abc-def-01"
    assert env["traceid"] == "00-abc-def-01"
    assert env["data"] == "hello"
    assert "data_base64" not in env


def test_defaults_source_and_type() -> None:
    env = envelope(b"x")
    assert env["source"] == "pylotto"
    assert env["type"] == "com.dapr.event.sent"
    assert env["traceparent"] == ""


@pytest.mark.parametrize(
    ("content_type", "data", "field", "value"),
    [
        ("application/json", b'{"a": [1, 2]}', "data", {"a": [1, 2]}),
        ("application/json; charset=utf-8", b"42", "data", 42),
        ("application/vnd.api+json", b'"s"', "data", "s"),
        ("text/plain", "héllo".encode(), "data", "héllo"),
        ("application/xml", b"<a/>", "data", "<a/>"),
        ("application/octet-stream", b"\x00\xff", "data_base64", "AP8="),
        ("text/plain", b"\xff\xfe", "data_base64", "//4="),
        ("application/json", b"{not json", "data_base64", base64.b64encode(b"{not json").decode()),
        ("application/json", b"NaN", "data_base64", "TmFO"),
        ("image/png", b"\x89PNG", "data_base64", "iVBORw=="),
        ("image/svg", b"<svg/>", "data", "<svg/>"),
    ],
)
def test_data_by_content_type(content_type: str, data: bytes, field: str, value: object) -> None:
    env = envelope(data, content_type)
    assert env[field] == value
    other = "data" if field == "data_base64" else "data_base64"
    assert other not in env
    assert env["datacontenttype"] == content_type


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/json", b'{"a":[1,2],"b":"\xc3\xa9"}'),
        ("application/json", b'"just a string"'),
        ("text/plain", b"plain"),
        ("application/octet-stream", bytes(range(256))),
        ("application/json", b"{broken"),
        ("", b""),
    ],
)
def test_round_trip_to_topic_event(content_type: str, data: bytes) -> None:
    wire = ce.encode(envelope(data, content_type))
    event = ce.to_topic_event(wire, topic="orders", pubsub_name="mem", metadata={"k": "v"})
    assert event.data == data
    assert event.data_content_type == (content_type or "text/plain")
    assert event.topic == "orders"
    assert event.pubsub_name == "mem"
    assert event.spec_version == "1.0"
    assert event.metadata == {"k": "v"}


def test_json_data_is_reencoded_compactly() -> None:
    wire = ce.encode(envelope(b'{ "a" : 1 }', "application/json"))
    event = ce.to_topic_event(wire, topic="t", pubsub_name="p", metadata={})
    assert event.data == b'{"a":1}'


def test_from_cloud_event_passes_through_and_overwrites_routing() -> None:
    app_event = {
        "id": "evt-1", "source": "shop", "type": "order.created", "specversion": "1.0",
        "datacontenttype": "application/json", "data": {"n": 1}, "topic": "wrong",
        "pubsubname": "wrong", "custom": "kept",
    }
    env = ce.from_cloud_event(json.dumps(app_event).encode(), topic="orders", pubsub_name="mem")
    assert env == {**app_event, "topic": "orders", "pubsubname": "mem"}


def test_from_cloud_event_fills_missing_attributes() -> None:
    env = ce.from_cloud_event(
        b'{"data": "x"}', topic="t", pubsub_name="p", source="myapp", trace_parent="00-1-2-01"
    )
    assert env["source"] == "myapp"
    assert env["type"] == "com.dapr.event.sent"
    assert env["specversion"] == "1.0"
    assert uuid.UUID(str(env["id"]))
    assert env["traceparent"] == "00-1-2-01"


@pytest.mark.parametrize("payload", [b"not json", b"[1, 2]", b"\xff"])
def test_from_cloud_event_refuses_non_objects(payload: bytes) -> None:
    with pytest.raises(InvalidArgument, match="cannot create cloudevent"):
        ce.from_cloud_event(payload, topic="t", pubsub_name="p")


def test_expiration_rounds_up_to_the_next_second() -> None:
    env: dict[str, object] = {}
    ce.set_expiration(env, 10, now=datetime(2024, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC))
    assert env["expiration"] == "2024-01-01T12:00:11Z"
    assert ce.has_expired(env, now=datetime(2024, 1, 1, 12, 0, 12, tzinfo=UTC))
    assert not ce.has_expired(env, now=datetime(2024, 1, 1, 12, 0, 10, tzinfo=UTC))


def test_unreadable_expiration_never_expires() -> None:
    assert not ce.has_expired({"expiration": "tomorrow"})
    assert not ce.has_expired({})


@pytest.mark.parametrize(("value", "expected"), [("30", 30), ("", None)])
def test_ttl_seconds(value: str, expected: int | None) -> None:
    assert ce.ttl_seconds({"ttlInSeconds": value}) == expected


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_bad_ttl_is_invalid_argument(value: str) -> None:
    with pytest.raises(InvalidArgument, match="ttlInSeconds"):
        ce.ttl_seconds({"ttlInSeconds": value})


@pytest.mark.parametrize(
    ("value", "raw"), [("true", True), ("TRUE", True), ("1", True), ("false", False), ("", False)]
)
def test_raw_payload_flag(value: str, raw: bool) -> None:
    assert ce.raw_payload({"rawPayload": value}) is raw


def test_foreign_payload_is_wrapped_as_octet_stream() -> None:
    event = ce.to_topic_event(b"\x01raw", topic="t", pubsub_name="p", metadata={})
    assert event.data == b"\x01raw"
    assert event.data_content_type == "application/octet-stream"
    assert event.spec_version == "1.0"
    assert uuid.UUID(event.id)


def test_raw_subscription_skips_envelope_parsing() -> None:
    wire = ce.encode(envelope(b"x"))
    event = ce.to_topic_event(wire, topic="t", pubsub_name="p", metadata={}, raw=True)
    assert event.data == wire
    assert event.data_content_type == "application/octet-stream"


def test_bad_base64_is_invalid_argument() -> None:
    wire = json.dumps({"specversion": "1.0", "id": "1", "data_base64": "!!"}).encode()
    with pytest.raises(InvalidArgument, match="base64"):
        ce.to_topic_event(wire, topic="t", pubsub_name="p", metadata={})
