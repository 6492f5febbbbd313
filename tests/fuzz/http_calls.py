"""The Dapr HTTP API's routes, hostile requests for each, and a client that sends them (also as
raw bytes on a socket, for requests no HTTP client would write)."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

from aiohttp import web
from hypothesis import strategies as st

from pylotto.facades.dapr.http import invoke, lifecycle, pubsub, resources, state
from tests.fuzz.strategies import (
    CONFIGURED,
    METADATA_KEYS,
    TTL_VALUES,
    hostile_bytes,
    hostile_text,
    json_documents,
    metadata_maps,
)

ANSWER_WAIT_SECONDS = 3.0
LEFT_OUT = ("shutdown",)
"""Handlers not fuzzed: ``/v1.0/shutdown`` would end the sidecar under test."""
ANY_METHOD = ("GET", "POST", "PUT", "DELETE", "PATCH")
CONTENT_TYPES = (
    "application/json", "text/plain; charset=evil", "application/cloudevents+json",
    "application/octet-stream", "text/plain", "", "application/json; charset=utf-16",
    "*/*;;;", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json; charset=latin-1", "text/plain; charset=\x7f",
)


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    """``/v1.0/state/{store}``: each ``{name}`` is filled in."""
    handler: str


def routes() -> list[Route]:
    """Every route of the Dapr HTTP API (read from the route modules themselves)."""
    router = web.UrlDispatcher()
    for module in (lifecycle, state, pubsub, invoke, resources):
        module.add_routes(router)
    out = []
    for route in router.routes():
        name = getattr(route.handler, "__name__", "")
        if name in LEFT_OUT or route.method == "HEAD":
            continue
        out.append(Route(route.method, route.resource.canonical if route.resource else "",
                         name))
    return out


@dataclass(frozen=True)
class HttpCase:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


ENCODED_SEGMENTS = ("%00", "%2F..%2F", "%ff", "%2e%2e")
"""Path segments sent as they are (already percent-encoded)."""


def _segment() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(CONFIGURED), st.sampled_from(CONFIGURED),
                     hostile_text().filter(bool), st.sampled_from(ENCODED_SEGMENTS))


def _quoted(text: str) -> str:
    return text if text in ENCODED_SEGMENTS else quote(text, safe="")


def _item() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "key": st.one_of(hostile_text(), json_documents(3)),
        "value": json_documents(),
        "etag": st.one_of(hostile_text(), st.integers()),
        "metadata": st.one_of(metadata_maps(), json_documents(3)),
        "options": st.fixed_dictionaries({}, optional={
            "concurrency": st.sampled_from(("first-write", "last-write", "x", 1)),
            "consistency": st.sampled_from(("strong", "eventual", "x", None))}),
    })


def _body_for(handler: str) -> st.SearchStrategy[Any]:
    """A JSON body shaped as ``handler`` reads it (with hostile values inside)."""
    if handler == "save_state":
        return st.lists(_item(), max_size=3)
    if handler == "bulk_get":
        return st.fixed_dictionaries({"keys": st.lists(hostile_text(), max_size=3)})
    if handler == "transaction":
        operation = st.fixed_dictionaries({
            "operation": st.sampled_from(("upsert", "delete", "x", "")), "request": _item()})
        return st.fixed_dictionaries({"operations": st.lists(operation, max_size=3)},
                                     optional={"metadata": metadata_maps()})
    if handler == "query":
        return st.fixed_dictionaries({}, optional={
            "filter": json_documents(6), "sort": json_documents(4),
            "page": st.fixed_dictionaries({}, optional={
                "limit": st.integers(-5, 2**40), "token": hostile_text()})})
    if handler == "bulk_publish":
        entry = st.fixed_dictionaries({}, optional={
            "entryId": hostile_text(), "event": json_documents(),
            "contentType": st.sampled_from(CONTENT_TYPES), "metadata": metadata_maps()})
        return st.lists(entry, max_size=3)
    if handler == "invoke_binding":
        return st.fixed_dictionaries({}, optional={
            "operation": st.sampled_from(("create", "get", "x", "")), "data": json_documents(),
            "metadata": metadata_maps()})
    if handler in ("try_lock", "unlock"):
        return st.fixed_dictionaries({}, optional={
            "resourceId": hostile_text(), "lockOwner": hostile_text(),
            "expiryInSeconds": st.one_of(st.integers(-(2**40), 2**70), hostile_text())})
    return json_documents()


def _encoded(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@cache
def cases(route: Route) -> st.SearchStrategy[HttpCase]:
    names = [part[1:-1] for part in route.template.split("/") if part.startswith("{")]
    segments = st.fixed_dictionaries({name: _segment() for name in names})
    query = st.dictionaries(
        st.one_of(st.sampled_from([f"metadata.{k}" for k in METADATA_KEYS]),
                  st.sampled_from(("key", "consistency", "concurrency"))),
        st.one_of(st.sampled_from(TTL_VALUES), hostile_text()), max_size=3)
    headers = st.fixed_dictionaries({}, optional={
        "Content-Type": st.sampled_from(CONTENT_TYPES),
        "If-Match": st.sampled_from(("1", "", "x" * 300, "-1")),
        "traceparent": st.sampled_from(("00-" + "0" * 32 + "-" + "0" * 16 + "-01", "junk")),
    })
    body = st.one_of(_body_for(route.handler).map(_encoded), hostile_bytes())
    method = st.sampled_from(ANY_METHOD) if route.method == "*" else st.just(route.method)

    def build(parts: tuple[str, dict[str, str], dict[str, str], dict[str, str], bytes]
              ) -> HttpCase:
        verb, filled, params, head, payload = parts
        path = route.template
        for name, value in filled.items():
            path = path.replace("{" + name + "}", _quoted(value))
        if params:
            path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
        return HttpCase(verb, path, {k: v.replace("\r", "").replace("\n", "")
                                     for k, v in head.items()},
                        b"" if verb in ("GET", "DELETE") and not payload else payload)

    return st.tuples(method, segments, query, headers, body).map(build)


class HttpClient:
    """One keep-alive connection, reopened when the server closed it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._connection: http.client.HTTPConnection | None = None

    def send(self, case: HttpCase) -> tuple[int, str, str]:
        """``(status, errorCode, message)`` of the answer ("" when the body has none)."""
        for attempt in (1, 2):
            connection = self._connection or http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=ANSWER_WAIT_SECONDS)
            self._connection = connection
            try:
                connection.putrequest(case.method, case.path, skip_accept_encoding=True)
                for name, value in case.headers.items():
                    connection.putheader(name, value)
                connection.putheader("Content-Length", str(len(case.body)))
                connection.endheaders(case.body)
                response = connection.getresponse()
                body = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                if response.status < 400:
                    return response.status, "", ""
                return (response.status, *_error_of(body))
            except (ConnectionError, http.client.RemoteDisconnected,
                    http.client.BadStatusLine):
                self.close()
                if attempt == 2:
                    raise
            except BaseException:
                self.close()  # the next case starts on a fresh connection
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _error_of(body: bytes) -> tuple[str, str]:
    """The ``errorCode`` and ``message`` of an error body ("" where it has none)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return "", ""
    if not isinstance(doc, dict):
        return "", ""
    return str(doc.get("errorCode", "")), str(doc.get("message", ""))


RAW_REQUESTS = (
    b"GET / HTTP/1.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on a plain port
    b"POST /v1.0/state/in-memory HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    b"POST /v1.0/state/in-memory HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /v1.0/state/in-memory HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n[]",
    b"GET /v1.0/healthz HTTP/9.9\r\n\r\n",
    b"GET /v1.0/state/in-memory/\xff\xfe HTTP/1.1\r\n\r\n",
    b"GET /v1.0/healthz HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n",
    b"BREW /v1.0/healthz HTTP/1.1\r\n\r\n",
    b"GET " + b"/a" * 5000 + b" HTTP/1.1\r\n\r\n",
    b"GET /v1.0/healthz HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
)


def raw_requests() -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from(RAW_REQUESTS), st.binary(min_size=1, max_size=64).map(
        lambda junk: junk + b"\r\n\r\n"))


def send_raw(port: int, data: bytes) -> int:
    """Send ``data`` on a new connection; the answer's status (0: closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WAIT_SECONDS) as sock:
        sock.sendall(data)
        try:
            sock.shutdown(socket.SHUT_WR)
            head = sock.recv(64)
        except (ConnectionError, TimeoutError):
            return 0
    parts = head.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return 0
