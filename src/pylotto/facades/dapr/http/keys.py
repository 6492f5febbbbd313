"""Application keys shared by the route modules."""

from __future__ import annotations

from aiohttp import web

from pylotto.process.runtime import Runtime

RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


def runtime_of(request: web.Request) -> Runtime:
    return request.app[RUNTIME_KEY]


def metadata_params(request: web.Request) -> dict[str, str]:
    """``?metadata.key=value`` query parameters as a metadata map."""
    prefix = "metadata."
    return {k[len(prefix):]: v for k, v in request.query.items() if k.startswith(prefix)}


async def json_of(request: web.Request) -> object:
    """The request body parsed as JSON (None when empty); JSONDecodeError when malformed."""
    import json

    raw = await request.read()
    return json.loads(raw) if raw.strip() else None
