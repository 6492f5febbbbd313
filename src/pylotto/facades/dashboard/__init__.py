"""The dashboard on the actuator: ``/dashboard`` (one self-contained page: its styles,
script and charts inline, nothing fetched from elsewhere, so it works offline) and
``/dashboard/api/snapshot`` (what the page polls every two seconds; see
:mod:`pylotto.facades.dashboard.snapshot`).

With an API token the dashboard needs it like the rest of the actuator. A browser cannot send
a header, so ``/dashboard?token=<token>`` checks it once and sets it as a cookie (HttpOnly,
SameSite=Strict, path ``/dashboard``) that the token guard accepts on the dashboard's paths
only; the page then drops the token from the address bar by a redirect.
"""

from __future__ import annotations

import json
from importlib import resources

from aiohttp import web

from pylotto.facades.dashboard.snapshot import Sources, snapshot

__all__ = ["COOKIE", "PATH", "SOURCES_KEY", "Sources", "add_routes", "given_token"]

PATH = "/dashboard"
COOKIE = "pylotto-dashboard-token"
SOURCES_KEY: web.AppKey[Sources] = web.AppKey("dashboard", Sources)
_PAGE = resources.files(__package__).joinpath("page.html").read_bytes()
_HEADERS = {
    "Cache-Control": "no-store",
    # the page runs its own inline script only, and talks to this origin only
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
                               "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token")
    if token is not None:  # the guard has checked it: keep it as a cookie, out of the URL
        response = web.HTTPFound(PATH)
        response.set_cookie(COOKIE, token, path=PATH, httponly=True, samesite="Strict")
        return response
    return web.Response(body=_PAGE, content_type="text/html", charset="utf-8",
                        headers=_HEADERS)


async def api_snapshot(request: web.Request) -> web.Response:
    body = await snapshot(request.app[SOURCES_KEY])
    return web.Response(text=json.dumps(body), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application, sources: Sources) -> None:
    app[SOURCES_KEY] = sources
    app.router.add_get(PATH, page)
    app.router.add_get(f"{PATH}/", page)
    app.router.add_get(f"{PATH}/api/snapshot", api_snapshot)


def given_token(request: web.Request) -> str | None:
    """The token a dashboard request carries outside the header: ``?token=`` on the page,
    else the cookie; None off the dashboard's paths."""
    if request.path != PATH and not request.path.startswith(f"{PATH}/"):
        return None
    return request.query.get("token") or request.cookies.get(COOKIE)
