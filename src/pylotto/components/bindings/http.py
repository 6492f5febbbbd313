"""``http``: an output binding that sends one HTTP request per call (Dapr ``bindings.http``).

The operation is the HTTP method (``create`` is POST). Request metadata ``path`` is appended to
the configured ``url``; metadata keys starting with a capital letter (``Content-Type``,
``Authorization``...) and ``traceparent``/``tracestate``/``baggage`` become request headers. The
response body is the returned data; its metadata holds ``statusCode``, ``status`` and every
response header. A status outside 2xx is an error unless ``errorIfNot2XX`` is false (component
metadata, or per call in request metadata).
"""

from __future__ import annotations

import aiohttp
from pydantic import Field, field_validator
from yarl import URL

from pylotto.components.base import ComponentContext
from pylotto.components.bindings.base import (
    BindingRequest,
    BindingResponse,
    BindingSettings,
    OutputBinding,
)
from pylotto.core.errors import DeadlineExceeded, Internal, InvalidArgument, Unavailable
from pylotto.core.metadata import ByteSize, ComponentSettings, Duration

DEFAULT_TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 15.0
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024
ERROR_BODY_EXCERPT = 512
TRACE_KEYS = ("traceparent", "tracestate", "baggage")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_UTF8 = "application/json; charset=utf-8"
TRUTHY = frozenset({"1", "t", "true", "y", "yes", "on"})

def is_truthy(text: str) -> bool:
    return text.strip().lower() in TRUTHY


def canonical_header(name: str) -> str:
    """Go's spelling of a header name: ``content-type`` → ``Content-Type``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class HttpBindingSettings(BindingSettings):
    url: str = Field(alias="url")
    response_timeout: Duration = Field(DEFAULT_TIMEOUT_SECONDS, alias="responseTimeout", gt=0)
    error_if_not_2xx: bool = Field(True, alias="errorIfNot2XX")
    security_token: str = Field("", alias="securityToken")
    security_token_header: str = Field("", alias="securityTokenHeader")
    max_response_body_size: ByteSize = Field(DEFAULT_MAX_BODY_BYTES, alias="maxResponseBodySize")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("expected an http:// or https:// URL with a host")
        return value


class HttpBinding(OutputBinding):
    Settings = HttpBindingSettings
    operations = ("create", "get", "head", "post", "put", "patch", "delete", "options", "trace")

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, HttpBindingSettings):
            raise TypeError(f"{type(self).__name__} needs HttpBindingSettings")
        self.config = settings
        self._session: aiohttp.ClientSession | None = None

    async def init(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT_SECONDS),
            auto_decompress=True,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _url(self, path: str) -> str:
        if not path:
            return self.config.url
        return self.config.url.rstrip("/") + "/" + path.lstrip("/")

    def _headers(self, metadata: dict[str, str], has_body: bool) -> dict[str, str]:
        headers: dict[str, str] = {}
        if has_body and "Content-Type" not in metadata:
            headers["Content-Type"] = JSON_UTF8
        if "Accept" not in metadata:
            headers["Accept"] = JSON_UTF8
        if self.config.security_token and self.config.security_token_header:
            headers[self.config.security_token_header] = self.config.security_token
        for key, value in metadata.items():
            if ("A" <= key[:1] <= "Z") or (key in TRACE_KEYS and value):
                headers[key] = value
        return headers

    async def invoke(self, request: BindingRequest) -> BindingResponse:
        if self._session is None:
            raise Unavailable(f"binding {self.name} is not started")
        metadata = dict(request.metadata)
        method = "POST" if request.operation == "create" else request.operation.upper()
        has_body = method in BODY_METHODS
        url = self._url(metadata.get("path", ""))
        error_if_not_2xx = self.config.error_if_not_2xx
        if metadata.get("errorIfNot2XX"):
            error_if_not_2xx = is_truthy(metadata["errorIfNot2XX"])
        timeout = self.config.response_timeout
        where = f"binding {self.name}: {method} {url}"
        try:
            async with self._session.request(
                method,
                url,
                data=request.data if has_body else None,
                headers=self._headers(metadata, has_body),
                timeout=aiohttp.ClientTimeout(total=timeout, connect=CONNECT_TIMEOUT_SECONDS),
            ) as resp:
                body = await self._read_body(resp)
                status = resp.status
                reason = resp.reason or ""
                out: dict[str, str] = {"statusCode": str(status), "status": f"{status} {reason}"}
                for key in set(resp.headers.keys()):
                    out[canonical_header(key)] = ", ".join(resp.headers.getall(key))
        except TimeoutError:
            raise DeadlineExceeded(f"{where}: no answer within {timeout:g}s") from None
        except aiohttp.InvalidURL as exc:
            raise InvalidArgument(f"{where}: invalid URL: {exc}") from None
        except aiohttp.ClientError as exc:
            raise Unavailable(f"{where}: {exc or type(exc).__name__}") from None
        self.context.logger.debug("%s → %d (%d bytes)", where, status, len(body))
        if error_if_not_2xx and not 200 <= status < 300:
            excerpt = body[:ERROR_BODY_EXCERPT].decode("utf-8", errors="replace")
            raise Internal(f"{where}: received status code {status}: {excerpt}")
        return BindingResponse(data=body, metadata=out)

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes:
        """The body, cut at ``maxResponseBodySize`` bytes (<= 0: no limit) as Dapr does."""
        limit = self.config.max_response_body_size
        if limit <= 0:
            return await resp.read()
        parts: list[bytes] = []
        remaining = limit
        while remaining > 0:
            chunk = await resp.content.read(min(remaining, 1 << 16))
            if not chunk:
                break
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

