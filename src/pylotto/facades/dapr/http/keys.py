"""Application keys shared by the route modules, and request helpers."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from pylotto.capabilities.services import CapabilityServices
from pylotto.capabilities.status import RuntimeStatus
from pylotto.core.errors import InvalidArgument
from pylotto.core.json_input import decode_json
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing
from pylotto.security.api_allowlist import ApiAccess
from pylotto.security.ratelimit import RateLimiter


@dataclass(frozen=True)
class Guards:
    """What the middlewares apply to every call (the gRPC interceptor's counterparts)."""

    api_token: str
    """The sidecar's API token; "" lets every call in."""
    rate_limiter: RateLimiter | None
    """None: no rate limits configured."""
    metrics: Metrics
    tracing: Tracing
    api_access: ApiAccess | None = None
    """The API allow/deny lists (None: every API served)."""


SERVICES_KEY: web.AppKey[CapabilityServices] = web.AppKey("services", CapabilityServices)
STATUS_KEY: web.AppKey[RuntimeStatus] = web.AppKey("status", RuntimeStatus)
GUARDS_KEY: web.AppKey[Guards] = web.AppKey("guards", Guards)


def services_of(request: web.Request) -> CapabilityServices:
    return request.app[SERVICES_KEY]


def status_of(request: web.Request) -> RuntimeStatus:
    return request.app[STATUS_KEY]


def metadata_params(request: web.Request) -> dict[str, str]:
    """``?metadata.key=value`` query parameters as a metadata map."""
    prefix = "metadata."
    return {k[len(prefix):]: v for k, v in request.query.items() if k.startswith(prefix)}


async def utf8_text_of(request: web.Request) -> str:
    """The request body as text: UTF-8 whatever charset the Content-Type names (as Dapr reads
    it); InvalidArgument when it is not UTF-8."""
    raw = await request.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(
            f"the request body is not UTF-8 text: {exc.reason} at byte {exc.start}") from None


async def json_of(request: web.Request) -> object:
    """The request body parsed as JSON (None when empty); InvalidArgument when it cannot be
    (:func:`pylotto.core.json_input.decode_json`)."""
    raw = await request.read()
    return decode_json(raw, "the request body") if raw.strip() else None
