"""The Jobs API over HTTP: ``POST``, ``GET`` and ``DELETE`` ``/v1.0-alpha1/jobs/{name}`` (and
the same under ``/v1.0``), as daprd's ``pkg/api/http/jobs.go``.

The POST body is the job in JSON (``schedule``, ``repeats``, ``dueTime``, ``ttl``, ``data`` —
any JSON value, kept as a ``google.protobuf.Value`` — ``overwrite``, ``failurePolicy``); the
name is the URL's only (a ``name`` in the body is refused). POST and DELETE answer 204, GET
the job as protobuf JSON.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web
from google.protobuf import duration_pb2, json_format, struct_pb2

from pylotto.capabilities.scheduler import FailurePolicy, JobSpec, Payload
from pylotto.core.errors import InvalidArgument
from pylotto.facades.dapr.http.keys import json_of, services_of
from pylotto.facades.dapr.jobs import spec_to_proto

VALUE_TYPE_URL = "type.googleapis.com/google.protobuf.Value"
_FIELDS = {"name", "schedule", "repeats", "dueTime", "due_time", "ttl", "data", "overwrite",
           "failurePolicy", "failure_policy"}


def _malformed(detail: str) -> InvalidArgument:
    return InvalidArgument(detail, where="http.body", detail=detail)


def _text(body: dict[str, Any], *names: str) -> str | None:
    for name in names:
        if name in body and body[name] is not None:
            if not isinstance(body[name], str):
                raise _malformed(f"{name}: expected a string")
            return str(body[name])
    return None


def _policy(raw: object) -> FailurePolicy | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _malformed("failurePolicy: expected an object")
    if "drop" in raw:
        return FailurePolicy(drop=True, interval=None, max_retries=None)
    constant = raw.get("constant")
    if constant is None:
        return None
    if not isinstance(constant, dict):
        raise _malformed("failurePolicy.constant: expected an object")
    interval = None
    if constant.get("interval") is not None:
        duration = duration_pb2.Duration()
        try:
            duration.FromJsonString(str(constant["interval"]))
        except ValueError as exc:
            raise _malformed(f"failurePolicy.constant.interval: {exc}") from None
        interval = duration.ToTimedelta()
    retries = constant.get("maxRetries", constant.get("max_retries"))
    if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool)
                                or retries < 0):
        raise _malformed("failurePolicy.constant.maxRetries: expected an unsigned integer")
    return FailurePolicy(interval=interval, max_retries=retries)


def spec_from_json(name: str, body: object) -> tuple[JobSpec, bool]:
    """The job of a POST body, and its ``overwrite``."""
    if not isinstance(body, dict):
        raise _malformed("expected a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise _malformed(f'unknown field "{unknown[0]}"')
    if body.get("name"):
        raise InvalidArgument("Set the job name in the url only", where="jobs.url_name")
    repeats = body.get("repeats")
    if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool)
                                or repeats < 0):
        raise _malformed("repeats: expected an unsigned integer")
    data = None
    if "data" in body:
        value = struct_pb2.Value()
        json_format.ParseDict(body["data"], value)
        data = Payload(VALUE_TYPE_URL, value.SerializeToString())
    spec = JobSpec(name=name.strip(), schedule=_text(body, "schedule"), repeats=repeats,
                   due_time=_text(body, "dueTime", "due_time"), ttl=_text(body, "ttl"),
                   data=data, failure_policy=_policy(body.get("failurePolicy",
                                                               body.get("failure_policy"))))
    return spec, bool(body.get("overwrite"))


def spec_to_json(spec: JobSpec) -> dict[str, Any]:
    job = spec_to_proto(spec)
    try:
        return json_format.MessageToDict(job)
    except (TypeError, KeyError):  # a payload of a type this process does not know
        data = job.data
        job.ClearField("data")
        out = json_format.MessageToDict(job)
        out["data"] = {"@type": data.type_url, "value": base64.b64encode(data.value).decode()}
        return out


async def schedule(request: web.Request) -> web.Response:
    body = await json_of(request)
    spec, overwrite = spec_from_json(request.match_info["name"], body)
    await services_of(request).scheduler.schedule(spec, overwrite)
    return web.Response(status=204)


async def get(request: web.Request) -> web.Response:
    spec = await services_of(request).scheduler.get(request.match_info["name"])
    return web.json_response(spec_to_json(spec))


async def delete(request: web.Request) -> web.Response:
    await services_of(request).scheduler.delete(request.match_info["name"])
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    for version in ("v1.0-alpha1", "v1.0"):
        router.add_post(f"/{version}/jobs/{{name}}", schedule)
        router.add_get(f"/{version}/jobs/{{name}}", get)
        router.add_delete(f"/{version}/jobs/{{name}}", delete)
