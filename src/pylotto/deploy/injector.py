"""``pylotto injector``: the mutating admission webhook that adds the pylotto sidecar to pods.

The API server POSTs an ``admission.k8s.io/v1`` ``AdmissionReview`` to ``/mutate`` (HTTPS) for
each pod created (``deploy/kubernetes/injector.yaml`` registers it); the answer is a review
with the same ``uid``:

- a pod that asks for a sidecar (:func:`pylotto.deploy.annotations.wants_sidecar`), in a
  namespace the injector serves, without one yet: allowed, with a JSON patch adding it
  (:func:`pylotto.deploy.patch.pod_patch`) and a warning for each annotation not honoured;
- any other object, operation or pod (not asking, opted out, already injected, another
  namespace): allowed, no patch — so a re-sent request leaves an injected pod as it is;
- a pod whose annotations cannot be read (``dapr.io/app-port: http``, an app id that is no DNS
  label): refused (``allowed: false``, status 400 with the reason), as Dapr refuses it;
- a body that is no AdmissionReview: HTTP 400; another content type than JSON: HTTP 415.

``/healthz`` answers 200 for the injector's own probes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import signal
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from pylotto.deploy import annotations as notes
from pylotto.deploy.patch import already_injected, pod_patch

log = logging.getLogger("pylotto.injector")

REVIEW_API = "admission.k8s.io/v1"
MUTATE_PATH = "/mutate"
HEALTH_PATH = "/healthz"
MAX_BODY = 4 * 1024 * 1024
DEFAULT_EXCLUDED = ("kube-system", "kube-public", "kube-node-lease")


class BadReview(ValueError):
    """The body is not an AdmissionReview v1 request."""


@dataclass(frozen=True)
class InjectorOptions:
    sidecar_image: str = "pylotto:latest"
    pull_policy: str = "IfNotPresent"
    resources_config_map: str = "pylotto-resources"
    namespaces: frozenset[str] = frozenset()
    """Only these namespaces (empty: every namespace not excluded)."""
    excluded_namespaces: frozenset[str] = field(default_factory=lambda:
                                                frozenset(DEFAULT_EXCLUDED))

    def serves(self, namespace: str) -> bool:
        if namespace in self.excluded_namespaces:
            return False
        return not self.namespaces or namespace in self.namespaces


def _request_of(review: Any) -> Mapping[str, Any]:
    if not isinstance(review, Mapping):
        raise BadReview("the body is not a JSON object")
    if review.get("apiVersion") != REVIEW_API or review.get("kind") != "AdmissionReview":
        raise BadReview(f"expected apiVersion {REVIEW_API}, kind AdmissionReview; got "
                        f"{review.get('apiVersion')!r}, {review.get('kind')!r}")
    request = review.get("request")
    if not isinstance(request, Mapping) or not isinstance(request.get("uid"), str) \
            or not request["uid"]:
        raise BadReview("the AdmissionReview has no request with a uid")
    return request


def _answer(uid: str, *, allowed: bool = True, patch: list[dict[str, Any]] | None = None,
            warnings: list[str] | None = None, refusal: str = "") -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    if warnings:
        response["warnings"] = warnings
    if refusal:
        response["status"] = {"code": 400, "reason": "BadRequest", "message": refusal}
    return {"apiVersion": REVIEW_API, "kind": "AdmissionReview", "response": response}


def _is_pod(request: Mapping[str, Any]) -> bool:
    kind = request.get("kind") or {}
    return isinstance(kind, Mapping) and kind.get("kind") == "Pod" \
        and kind.get("group", "") == "" and kind.get("version", "v1") == "v1"


def review(body: Any, options: InjectorOptions) -> dict[str, Any]:
    """The AdmissionReview answering ``body`` (a parsed AdmissionReview); raises
    :class:`BadReview` when it is none."""
    request = _request_of(body)
    uid = str(request["uid"])
    if not _is_pod(request) or request.get("operation", "CREATE") != "CREATE":
        return _answer(uid)
    pod = request.get("object")
    if not isinstance(pod, Mapping):
        return _answer(uid, allowed=False, refusal="the request carries no pod object")
    metadata = pod.get("metadata") or {}
    pod_notes = metadata.get("annotations") or {}
    if not isinstance(pod_notes, Mapping) or not notes.wants_sidecar(pod_notes):
        return _answer(uid)
    namespace = str(request.get("namespace") or metadata.get("namespace") or "default")
    if not options.serves(namespace) or already_injected(pod):
        return _answer(uid)
    name = str(metadata.get("name") or "") or str(metadata.get("generateName") or "").rstrip("-")
    try:
        sidecar = notes.read(pod_notes, pod_name=name, default_image=options.sidecar_image,
                             default_resources=options.resources_config_map)
        ops, warnings = pod_patch(pod, sidecar, pull_policy=options.pull_policy)
    except notes.AnnotationError as exc:
        log.warning("pod %s/%s refused: %s", namespace, name or "?", exc)
        return _answer(uid, allowed=False, refusal=f"pylotto sidecar injector: {exc}")
    log.info("pod %s/%s: pylotto sidecar injected for app %s", namespace, name or "?",
             sidecar.app_id)
    return _answer(uid, patch=ops, warnings=warnings)


def make_app(options: InjectorOptions) -> web.Application:
    async def mutate(request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.Response(status=415, text="invalid Content-Type, expected "
                                                 "`application/json`")
        raw = await request.read()
        if not raw:
            return web.Response(status=400, text="empty body")
        try:
            answer = review(json.loads(raw), options)
        except (ValueError, BadReview) as exc:  # json.JSONDecodeError is a ValueError
            return web.Response(status=400, text=f"not an AdmissionReview: {exc}")
        return web.json_response(answer)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(MUTATE_PATH, mutate)
    app.router.add_get(HEALTH_PATH, healthz)
    return app


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def start(options: InjectorOptions, host: str, port: int, cert: Path,
                key: Path) -> web.AppRunner:
    """Serve the webhook on ``host:port`` over HTTPS; the caller cleans the runner up."""
    runner = web.AppRunner(make_app(options), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=tls_context(cert, key)).start()
    log.info("pylotto injector serving https://%s:%d%s", host, port, MUTATE_PATH)
    return runner


async def serve(options: InjectorOptions, host: str, port: int, cert: Path, key: Path) -> int:
    """Serve until SIGTERM or SIGINT; the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = await start(options, host, port, cert, key)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0
