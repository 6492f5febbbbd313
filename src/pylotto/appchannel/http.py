"""HTTP requests from the sidecar to its own app (InvokeService to the local app).

One :class:`HttpAppChannel` per app holds one aiohttp session. ``close()`` lets requests in
flight finish (each has its own timeout) before the session goes away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from pylotto.core.errors import DeadlineExceeded, InvalidArgument, Unavailable
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
        self.base_url = f"{scheme}://{host}:{port}"
        self.verify_tls = False
        """https: the app's certificate is not checked (Dapr's app channel does not either:
        the app is on the sidecar's own host)."""
        self.api_token = api_token
        """Sent as ``dapr-api-token`` on every request when set (APP_API_TOKEN)."""
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def open(self) -> None:
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

    async def send(self, request: AppRequest) -> AppResponse:
        if self._closed:
            raise Unavailable(f"app channel to {self.base_url} is closed (sidecar stopping)")
        await self.open()
        assert self._session is not None
        url = self.url(request.path, request.query)
        where = f"app at {self.base_url}: {request.verb} {url.path_qs}"
        self._in_flight += 1
        self._idle.clear()
        try:
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
