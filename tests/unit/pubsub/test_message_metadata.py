"""The message's metadata handed to the app with a delivery (daprd's headers / gRPC metadata),
without the keys the sidecar sets itself or a header cannot carry."""

from __future__ import annotations

from pylotto.appchannel import message_metadata
from pylotto.appchannel.base import TopicEvent


def _event(metadata: dict[str, str]) -> TopicEvent:
    return TopicEvent(id="1", source="app", type="com.dapr.event.sent", spec_version="1.0",
                      data_content_type="", topic="t", pubsub_name="bus", data=b"",
                      metadata=metadata)


def test_http_headers_carry_the_metadata_and_pubsub_name() -> None:
    event = _event({"Tenant": "acme", "dapr-api-token": "x", "Content-Length": "9",
                    "bad key": "v", "split": "a\r\nInjected: 1", "traceparent": "00-1"})
    assert message_metadata.http_headers(event) == [("Tenant", "acme"), ("pubsubName", "bus")]


def test_grpc_metadata_is_lowercased_and_leaves_out_reserved_keys() -> None:
    event = _event({"Tenant": "acme", "grpc-timeout": "1S", "x-bin": "v",
                    "Authorization": "Bearer x", "ünï": "v"})
    assert message_metadata.grpc_metadata(event) == [("tenant", "acme"), ("pubsubname", "bus")]
