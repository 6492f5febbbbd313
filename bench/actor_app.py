"""The app of the actor-call bench: an aiohttp + uvloop server hosting the actor type
``BenchActor`` the way daprd's HTTP protocol asks (``GET /dapr/config``, ``PUT
/actors/<type>/<id>/method/<m>``, ``DELETE /actors/<type>/<id>``) and answering ``POST /echo``
for plain invocation. Both echo the body: the two paths differ only in the sidecar's work."""

from __future__ import annotations

import argparse

from aiohttp import web

CONFIG = {"entities": ["BenchActor"], "actorIdleTimeout": "1h"}


async def config(request: web.Request) -> web.Response:
    return web.json_response(CONFIG)


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read(), content_type="application/octet-stream")


async def deactivate(request: web.Request) -> web.Response:
    return web.Response()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    import uvloop

    app = web.Application()
    app.router.add_get("/dapr/config", config)
    app.router.add_put("/actors/{type}/{id}/method/{method:.*}", echo)
    app.router.add_delete("/actors/{type}/{id}", deactivate)
    app.router.add_post("/echo", echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
