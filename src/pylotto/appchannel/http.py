"""HTTP requests from the sidecar to its own app (InvokeService to the local app).

One :class:`HttpAppChannel` per app holds one aiohttp session. ``close()`` lets requests in
flight finish (each has its own timeout) before the session goes away.

Scheme ``h2c`` (``--app-protocol h2c``): HTTP/2 without TLS with prior knowledge, as daprd's
``http2.Transport{AllowHTTP: true}`` speaks it, through httpx (the ``h2c`` extra: aiohttp has
HTTP/1.1 only); requests share one multiplexed connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from pylotto.core.errors import ConfigError, DeadlineExceeded, InvalidArgument, Unavailable
from pylotto.observability.dapr_metrics import DaprMetrics
from pylotto.security.tokens import TOKEN_HEADER

log = logging.getLogger("pylotto.appchannel.http")

CONNECT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class AppRequest:
    verb: str
    """HTTP method, upper case."""
    path: str
    """The app's route, with or without a leading slash."""
    query: str = ""
    """Query string without ``?``; replaces any query written in ``path``."""
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    timeout: float = 3.0
    """Seconds for the whole exchange."""


@dataclass(frozen=True, slots=True)
class AppResponse:
    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)


class HttpAppChannel:
    """Sends :class:`AppRequest` to ``http://host:port`` and returns the app's answer.

    Bodies arrive decompressed. Errors: the app refusing or dropping the connection →
    Unavailable; no answer within the request's timeout → DeadlineExceeded. Any HTTP status is
    returned, not raised.
    """

    def __init__(self, host: str, port: int, *, api_token: str = "",
                 scheme: str = "http") -> None:
        self.h2c = scheme == "h2c"
        """HTTP/2 with prior knowledge over plain TCP (httpx), not aiohttp's HTTP/1.1."""
        self.base_url = f"{'http' if self.h2c else scheme}://{host}:{port}"
        self.verify_tls = False
        """https: the app's certificate is not checked (Dapr's app channel does not either:
        the app is on the sidecar's own host)."""
        self.api_token = api_token
        """Sent as ``dapr-api-token`` on every request when set (APP_API_TOKEN)."""
        self._session: aiohttp.ClientSession | None = None
        self._h2: Any = None
        """The httpx.AsyncClient of an h2c channel."""
        self._closed = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def open(self) -> None:
        if self.h2c:
            if self._h2 is None:
                self._h2 = h2c_client(CONNECT_TIMEOUT_SECONDS)
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_SECONDS),
            )

    async def close(self) -> None:
        """Refuse new requests, wait for those in flight, then close the session."""
        self._closed = True
        await self._idle.wait()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._h2 is not None:
            await self._h2.aclose()
            self._h2 = None

    def url(self, path: str, query: str) -> URL:
        target = f"{self.base_url}/{path.lstrip('/')}"
        if query:
            target = target.split("?", 1)[0] + "?" + query.lstrip("?")
        try:
            return URL(target)
        except ValueError as exc:
            raise InvalidArgument(f"method {path!r} does not form a valid URL: {exc}") from None

    def _headers(self, request: AppRequest) -> CIMultiDict[str]:
        headers = CIMultiDict(request.headers)
        headers.popall(TOKEN_HEADER, None)  # the caller's token is not the app's
        if self.api_token:
            headers[TOKEN_HEADER] = self.api_token
        return headers

    observer: DaprMetrics | None = None
    """Where each answered request is counted (daprd's HTTP client metrics), when set."""

    async def send(self, request: AppRequest) -> AppResponse:
        started = time.perf_counter()
        response = await self._send(request)
        if self.observer is not None:
            self.observer.http_sent(request.verb, request.path, response.status,
                                    time.perf_counter() - started)
        return response

    async def _send(self, request: AppRequest) -> AppResponse:
        if self._closed:
            raise Unavailable(f"app channel to {self.base_url} is closed (sidecar stopping)")
        await self.open()
        url = self.url(request.path, request.query)
        where = f"app at {self.base_url}: {request.verb} {url.path_qs}"
        self._in_flight += 1
        self._idle.clear()
        try:
            if self.h2c:
                response = await self._send_h2c(request, url, where)
                log.debug("%s → %d (%d bytes)", where, response.status, len(response.body))
                return response
            assert self._session is not None
            async with self._session.request(
                request.verb,
                url,
                data=request.body or None,
                headers=self._headers(request),
                timeout=aiohttp.ClientTimeout(
                    total=request.timeout, connect=min(request.timeout, CONNECT_TIMEOUT_SECONDS)
                ),
                allow_redirects=False,
                ssl=self.verify_tls,
            ) as resp:
                body = await resp.read()
                response = AppResponse(
                    status=resp.status,
                    body=body,
                    content_type=resp.headers.get("Content-Type", ""),
                    headers=list(resp.headers.items()),
                )
        except TimeoutError:
            raise DeadlineExceeded(f"{where}: no answer within {request.timeout:g}s") from None
        except aiohttp.InvalidURL as exc:
            raise InvalidArgument(f"{where}: invalid URL: {exc}") from None
        except aiohttp.ClientError as exc:
            raise Unavailable(f"{where}: app unreachable: {exc or type(exc).__name__}") from None
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
        log.debug("%s → %d (%d bytes)", where, response.status, len(response.body))
        return response

    async def _send_h2c(self, request: AppRequest, url: URL, where: str) -> AppResponse:
        import httpx

        try:
            resp = await self._h2.request(
                request.verb, str(url), content=request.body or None,
                headers=list(self._headers(request).items()),
                timeout=httpx.Timeout(request.timeout,
                                      connect=min(request.timeout, CONNECT_TIMEOUT_SECONDS)))
        except httpx.TimeoutException:
            raise DeadlineExceeded(f"{where}: no answer within {request.timeout:g}s") from None
        except httpx.InvalidURL as exc:
            raise InvalidArgument(f"{where}: invalid URL: {exc}") from None
        except (httpx.TransportError, OSError) as exc:
            raise Unavailable(f"{where}: app unreachable: {exc or type(exc).__name__}") from None
        return AppResponse(status=resp.status_code, body=resp.content,
                           content_type=resp.headers.get("Content-Type", ""),
                           headers=list(resp.headers.multi_items()))


def h2c_client(connect_timeout: float) -> Any:
    """An httpx client speaking HTTP/2 with prior knowledge to ``http://`` URLs (h2c), no
    redirects followed; ConfigError naming the extra when httpx or h2 is not installed."""
    try:
        import h2  # noqa: F401  (httpx needs it for HTTP/2)
        import httpx
    except ImportError as exc:
        raise ConfigError("--app-protocol h2c needs HTTP/2 support: pip install "
                          f"'pylotto[h2c]' ({exc})") from None
    return httpx.AsyncClient(http1=False, http2=True, follow_redirects=False,
                             timeout=httpx.Timeout(None, connect=connect_timeout))
