"""The message's metadata handed to the app with a delivery, as daprd hands it: every key of
the message's metadata (and ``pubsubName``) as an HTTP header for an HTTP app, as gRPC metadata
(keys lowercased) for a gRPC app (dapr/dapr ``WithCustomHTTPMetadata``,
``WithCustomGRPCMetadata``).

*Departure:* keys the sidecar sets itself on a delivery (the app token, the trace context,
content type and length, hop-by-hop headers) and keys or values a header cannot carry are left
out: daprd would send a publisher's ``dapr-api-token`` metadata to the app beside the sidecar's
own, letting anyone who may publish speak with the sidecar's voice.
"""

from __future__ import annotations

import re

from pylotto.appchannel.base import TopicEvent

RESERVED = frozenset({
    "content-type", "content-length", "dapr-api-token", "authorization", "traceparent",
    "tracestate", "grpc-trace-bin", "host", "connection", "transfer-encoding", "te", "upgrade",
})
"""Keys never taken from a message (the sidecar's own, or hop-by-hop)."""

_HTTP_KEY = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_GRPC_KEY = re.compile(r"[0-9a-z_.-]+")
_VALUE = re.compile(r"[\x20-\x7e]*")


def _pairs(event: TopicEvent) -> dict[str, str]:
    return {**event.metadata, "pubsubName": event.pubsub_name}


def http_headers(event: TopicEvent) -> list[tuple[str, str]]:
    """The headers of an HTTP delivery carrying ``event``'s metadata."""
    return [(key, value) for key, value in _pairs(event).items()
            if key.lower() not in RESERVED and _HTTP_KEY.fullmatch(key)
            and _VALUE.fullmatch(value)]


def grpc_metadata(event: TopicEvent) -> list[tuple[str, str]]:
    """The gRPC metadata of a delivery carrying ``event``'s metadata (keys lowercased)."""
    out = []
    for key, value in _pairs(event).items():
        key = key.lower()
        if (key in RESERVED or key.startswith("grpc-") or key.endswith("-bin")
                or not _GRPC_KEY.fullmatch(key) or not _VALUE.fullmatch(value)):
            continue
        out.append((key, value))
    return out
