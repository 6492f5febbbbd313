"""Which headers travel with a service invocation, for every path a call takes — the one place
these rules are written.

The paths differ on purpose, and each keeps what it did when the rules lived in the facades:

- a gRPC ``InvokeService`` (Layotto and Dapr): the caller's metadata minus gRPC's own
  (pseudo-headers, ``grpc-*``, ``*-bin``, :data:`GRPC_TRANSPORT`) — :func:`from_grpc_metadata`;
- Dapr's HTTP ``/v1.0/invoke``: the request headers minus :data:`HOP_BY_HOP`, the sidecar's
  API token and ``Content-Type`` (the request's own, sent apart) — :func:`from_http_headers`;
- to the app over HTTP: the above minus the invocation's own headers (timeout, target id),
  which the capability replaces — :func:`to_app`;
- gRPC proxying: every key but the transport's and the caller id (which it sets) —
  :func:`proxied`; binary (``-bin``) metadata goes along, the call is passed on as bytes;
- the app's answer back as gRPC initial metadata: valid, non-reserved keys and printable
  values only — :func:`to_grpc_metadata`;
- to a gRPC app (``OnInvoke``): the headers as Dapr converts them — lowercased, the permanent
  HTTP headers (:data:`PERMANENT_HTTP`) prefixed ``dapr-``, trace headers left out (the
  capability adds ``traceparent``, ``tracestate`` and ``grpc-trace-bin`` of the current span)
  — :func:`to_grpc_app`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer",
    "upgrade", "host", "content-length", "content-encoding",
})
"""Headers that describe one HTTP hop; never forwarded in either direction."""
GRPC_TRANSPORT = frozenset({"content-type", "te", "user-agent"})
"""gRPC metadata that describes the gRPC call itself, not the caller's request."""
API_TOKEN_HEADER = "dapr-api-token"
"""The sidecar's own API token (see :mod:`pylotto.security.tokens`)."""
TIMEOUT_HEADER = "rpc_request_timeout"
"""Layotto's per-call timeout, in milliseconds."""
TARGET_ID_HEADER = "id"
"""Told to the app: the app id the call was addressed to (Layotto's header)."""
CALLER_ID_HEADER = "dapr-caller-app-id"
"""Told to the app on calls from another app (Dapr's header)."""

PERMANENT_HTTP = frozenset({
    "accept", "accept-charset", "accept-language", "accept-ranges", "connection", "keep-alive",
    "proxy-connection", "transfer-encoding", "upgrade", "cache-control", "content-type",
    "content-length", "cookie", "date", "expect", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-schedule-tag-match", "if-unmodified-since",
    "max-forwards", "origin", "pragma", "referer", "via", "warning",
})
"""IANA's permanent request headers: Dapr hands them to a gRPC app as ``dapr-<name>``."""
TRACE_HEADERS = frozenset({"traceparent", "tracestate", "grpc-trace-bin"})

_NOT_FROM_HTTP = HOP_BY_HOP | {API_TOKEN_HEADER, "content-type"}
_NOT_TO_APP = HOP_BY_HOP | {TIMEOUT_HEADER, TARGET_ID_HEADER, "content-type"}
_NOT_TO_SIDECAR = HOP_BY_HOP | {TIMEOUT_HEADER}
_NOT_PROXIED = GRPC_TRANSPORT | {"grpc-timeout", "grpc-accept-encoding", "grpc-encoding",
                                 CALLER_ID_HEADER}
_METADATA_KEY = re.compile(r"[0-9a-z_.\-]+")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def from_grpc_metadata(metadata: Iterable[tuple[str, Any]] | None) -> list[tuple[str, str]]:
    """Caller metadata worth forwarding: no pseudo-headers, gRPC transport or binary keys."""
    out = []
    for key, value in metadata or ():
        lowered = key.lower()
        if (lowered.startswith((":", "grpc-")) or lowered.endswith("-bin")
                or lowered in GRPC_TRANSPORT or not isinstance(value, str)):
            continue
        out.append((key, value))
    return out


def from_http_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The HTTP request's headers worth forwarding (not the hop's, not the API token)."""
    return [(k, v) for k, v in headers if k.lower() not in _NOT_FROM_HTTP]


def to_app(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers of a call the capability hands to the app (it adds the target id, content
    type and trace context itself; trace headers are dropped by the caller)."""
    return [(k, v) for k, v in headers if k.lower() not in _NOT_TO_APP]


def to_sidecar(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers of a call sent on to another app's sidecar (its timeout travels apart)."""
    return [(k, v) for k, v in headers if k.lower() not in _NOT_TO_SIDECAR]


def served(headers: Sequence[tuple[str, str]], caller_app_id: str) -> list[tuple[str, str]]:
    """Headers of a call from another sidecar, as this sidecar's app gets them: the caller's
    timeout header dropped (the call's own timeout applies), the caller's app id added."""
    out = [(k, v) for k, v in headers if k.lower() != TIMEOUT_HEADER]
    out.append((CALLER_ID_HEADER, caller_app_id))
    return out


def proxied(metadata: Iterable[tuple[str, Any]], caller_app_id: str) -> list[tuple[str, Any]]:
    """Metadata of a proxied gRPC call: the caller's, minus the transport's, plus
    ``dapr-caller-app-id``."""
    out = [(k, v) for k, v in metadata if k not in _NOT_PROXIED and not k.startswith(":")]
    out.append((CALLER_ID_HEADER, caller_app_id))
    return out


def to_grpc_metadata(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """App response headers that are valid, non-reserved gRPC metadata."""
    out = []
    for key, value in headers:
        lowered = key.lower()
        if (lowered.startswith("grpc-") or lowered in GRPC_TRANSPORT or lowered.endswith("-bin")
                or not _METADATA_KEY.fullmatch(lowered) or not _PRINTABLE.fullmatch(value)):
            continue
        out.append((lowered, value))
    return out


def to_grpc_app(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers of a call handed to a gRPC app, as Dapr converts them (see the module doc);
    keys or values gRPC metadata cannot carry are left out."""
    out = []
    for key, value in headers:
        lowered = key.lower()
        if lowered in TRACE_HEADERS or lowered in (TIMEOUT_HEADER, TARGET_ID_HEADER,
                                                   API_TOKEN_HEADER):
            continue  # the caller's token is not the app's (the channel sends that)
        if lowered in PERMANENT_HTTP:
            lowered = "dapr-" + lowered
        if (lowered.startswith("grpc-") or lowered in GRPC_TRANSPORT or lowered.endswith("-bin")
                or not _METADATA_KEY.fullmatch(lowered) or not _PRINTABLE.fullmatch(value)):
            continue
        out.append((lowered, value))
    return out
