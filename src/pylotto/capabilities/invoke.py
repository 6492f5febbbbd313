"""InvokeService: call a method of an app by its app id — this sidecar's own app over its app
channel (HTTP, or Dapr's AppCallback gRPC), another app through one of its sidecars (found by
name resolution, see :mod:`pylotto.appchannel.sidecars`).

Follows Layotto's HTTP channel: the method is the request path, the verb defaults to GET, the
query string is carried as is, the caller's headers are forwarded plus ``id: <app id>``, and the
timeout is header ``rpc_request_timeout`` (milliseconds) or 3000 ms, shortened to the caller's own
deadline. For the gRPC facades a reply outside 2xx is Unavailable ``"http response code <n>,
body: <body>"``; Dapr's HTTP API passes the app's status through (``pass_status``).
Calls between sidecars carry the caller's app id; the target sidecar hands the call to its own
app exactly as a local call and returns the app's status, headers and body unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pylotto.appchannel.http import AppRequest
from pylotto.appchannel.sidecars import AppAnswer, AppCall, SidecarChannel
from pylotto.capabilities import forwarding
from pylotto.capabilities.base import RuntimeContext
from pylotto.capabilities.forwarding import (
    CALLER_ID_HEADER,
    HOP_BY_HOP,
    TARGET_ID_HEADER,
    TIMEOUT_HEADER,
)
from pylotto.core.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotConfigured,
    PermissionDenied,
    PylottoError,
    Unavailable,
    Unsupported,
)
from pylotto.core.resiliency import Resiliency
from pylotto.observability import span_attributes
from pylotto.observability.tracing import (
    TRACEPARENT,
    TRACESTATE,
    Tracing,
    carrier_from,
    grpc_trace_metadata,
)

if TYPE_CHECKING:
    from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel
    from pylotto.appchannel.http import HttpAppChannel
    from pylotto.appchannel.select import AppChannels, RawGrpcAppChannel
    from pylotto.resolution.base import Resolver
    from pylotto.security.access import AccessCheck
    from pylotto.security.ratelimit import RateLimiter

log = logging.getLogger("pylotto.invoke")

__all__ = ["CALLER_ID_HEADER", "HOP_BY_HOP", "TARGET_ID_HEADER", "TIMEOUT_HEADER"]  # re-exported

DEFAULT_TIMEOUT_MS = 3000
"""Layotto's: a gRPC InvokeService without ``rpc_request_timeout`` (or a shorter deadline)."""
DAPR_TIMEOUT_MS = 60_000
"""Dapr has no invocation timeout of its own; a minute bounds a hung app. It applies to Dapr's
HTTP invoke, to calls from other sidecars that carry no timeout, and to gRPC proxying without
a deadline."""
VERBS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"})
DEFAULT_VERB = "GET"
ERROR_BODY_EXCERPT = 1024
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
"""Dapr's content type of a payload with a protobuf type (an ``Any`` with a ``type_url``)."""


class Functions(Protocol):
    """Functions served in place of an app (WebAssembly: :class:`pylotto.wasm.runner.
    WasmFunctions`); an app id that is a function id runs the function. A protocol, so the
    capability layer does not import the WASM runner (which imports it)."""

    def __contains__(self, function_id: object) -> bool: ...

    async def invoke(self, request: InvokeRequest,
                     limit_seconds: float | None) -> InvokeResult: ...

    def close(self) -> None: ...


def served_timeout(timeout_ms: int, remaining: float | None) -> float:
    """Seconds a call from another sidecar may take: its own ``timeout_ms``, else the time
    its caller has left, else :data:`DAPR_TIMEOUT_MS`; never more than the time left."""
    timeout = timeout_ms / 1000 if timeout_ms else (remaining or DAPR_TIMEOUT_MS / 1000)
    return min(timeout, remaining) if remaining else timeout


@dataclass(frozen=True, slots=True)
class InvokeRequest:
    app_id: str
    method: str
    data: bytes = b""
    content_type: str = ""
    verb: str = ""
    """HTTP method; "" or "NONE" means GET."""
    querystring: str = ""
    headers: Sequence[tuple[str, str]] = ()
    """The caller's metadata, forwarded as HTTP headers."""
    deadline_seconds: float | None = None
    """Time the caller has left, if it set a deadline."""
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS
    """The timeout when no ``rpc_request_timeout`` header gives one."""
    pass_status: bool = False
    """True: any app status comes back in the result; False: outside 2xx is Unavailable."""
    data_type_url: str = ""
    """The protobuf type of ``data`` (the ``type_url`` of the caller's ``Any``); "" for raw
    bytes. Kept on the way to a gRPC app, as Dapr keeps it."""


@dataclass(frozen=True, slots=True)
class InvokeResult:
    data: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    """The app's response headers (hop-by-hop ones removed)."""
    status: int = 200
    data_type_url: str = ""
    """The protobuf type of a gRPC app's answer (its ``Any``'s ``type_url``); "" for bytes."""

    @property
    def wire_content_type(self) -> str:
        """The content type an HTTP caller gets: Dapr's ``application/x-protobuf`` for a
        protobuf answer, else the app's own."""
        return PROTOBUF_CONTENT_TYPE if self.data_type_url else self.content_type


class InvokeCapability:
    """Service invocation; built with the runtime context only (no components)."""

    def __init__(self, context: RuntimeContext, *, channels: AppChannels | None = None,
                 sidecars: SidecarChannel | None = None,
                 resolver: Resolver | None = None, advertise: str = "",
                 access: AccessCheck | None = None,
                 resiliency: Resiliency | None = None,
                 rate_limiter: RateLimiter | None = None,
                 tracing: Tracing | None = None,
                 functions: Functions | None = None) -> None:
        """``channels``: the app channels (:func:`pylotto.appchannel.select.app_channels`);
        None: this sidecar's app cannot be invoked. ``functions``: served in place of apps."""
        self.context = context
        self.rate_limiter = rate_limiter
        self.tracing = tracing if tracing is not None else Tracing(None, "")
        self.access = access
        self.resiliency = resiliency or Resiliency(None)
        self.sidecars = sidecars
        self.resolver = resolver
        self.advertise = advertise
        self._channel: HttpAppChannel | None = None
        self._grpc: DaprGrpcAppChannel | None = None
        self._proxy: RawGrpcAppChannel | None = None
        if channels is not None:
            self._channel, self._grpc = channels.invoke_http, channels.invoke_grpc
            self._proxy = channels.proxy
        self.functions = functions

    @property
    def http_app_channel(self) -> HttpAppChannel | None:
        """The HTTP channel to this sidecar's app (None: the app has no HTTP port)."""
        return self._channel

    @property
    def grpc_app_channel(self) -> DaprGrpcAppChannel | None:
        """The channel to this sidecar's gRPC app (None: the app is no gRPC app)."""
        return self._grpc

    def _app_channel(self) -> HttpAppChannel:
        if self._channel is None:
            raise NotConfigured(
                "InvokeService needs the app's HTTP port: set app.port in the configuration"
            )
        return self._channel

    def _grpc_channel(self) -> DaprGrpcAppChannel:
        if self._grpc is None:
            raise NotConfigured("invoking the app needs its port: set app.port")
        return self._grpc

    async def start(self) -> None:
        if self._channel is not None:
            await self._channel.open()
        if self.resolver is not None:
            await self.resolver.start(self.context.app_id, self.advertise)

    async def stop(self) -> None:
        """Leave name resolution, let calls in flight finish, then close the connections."""
        if self.resolver is not None:
            await self.resolver.stop()
        if self.sidecars is not None:
            await self.sidecars.close()
        if self._channel is not None:
            await self._channel.close()  # later calls get Unavailable
        if self._grpc is not None:
            await self._grpc.close()
        if self.functions is not None:
            self.functions.close()

    def _is_remote(self, app_id: str) -> bool:
        own = self.context.app_id
        if not app_id:
            raise InvalidArgument("InvokeService id (the target app id) is empty")
        if app_id == own:
            return False
        if self.sidecars is None:
            mine = f"this sidecar's app is {own!r}" if own else "this sidecar has no app.id set"
            raise Unsupported(
                f"cannot invoke app {app_id!r}: {mine}; invoking other app ids needs "
                "name resolution (name_resolution in the configuration)",
                where="invoke.resolve")
        return True

    @staticmethod
    def _verb(verb: str) -> str:
        upper = verb.upper()
        if upper in ("", "NONE"):
            return DEFAULT_VERB
        if upper not in VERBS:
            allowed = ", ".join(sorted(VERBS))
            raise InvalidArgument(f"HTTP verb {verb!r} cannot invoke an app method; use {allowed}")
        return upper

    @staticmethod
    def _timeout(request: InvokeRequest) -> float:
        limit = InvokeCapability._limit(request, request.default_timeout_ms)
        assert limit is not None  # a default was given
        return limit

    @staticmethod
    def _limit(request: InvokeRequest, default_ms: int | None) -> float | None:
        """Seconds the call may take: header ``rpc_request_timeout`` (else ``default_ms``),
        shortened to the caller's own deadline; None when none of them sets one."""
        millis = default_ms
        for key, value in request.headers:
            if key.lower() == TIMEOUT_HEADER:
                try:
                    millis = int(value)
                except ValueError:
                    raise InvalidArgument(
                        f"header {TIMEOUT_HEADER}={value!r} is not a number of milliseconds"
                    ) from None
                if millis <= 0:
                    raise InvalidArgument(f"header {TIMEOUT_HEADER} must be positive, got {millis}")
        seconds = None if millis is None else millis / 1000
        if request.deadline_seconds is not None:
            if request.deadline_seconds <= 0:
                raise DeadlineExceeded("the caller's deadline has already passed")
            seconds = min(seconds or request.deadline_seconds, request.deadline_seconds)
        return seconds

    def _forwarded(self, request: InvokeRequest) -> list[tuple[str, str]]:
        headers = self._traced(forwarding.to_app(request.headers), request.headers)
        headers.append((TARGET_ID_HEADER, request.app_id))
        content_type = PROTOBUF_CONTENT_TYPE if request.data_type_url else request.content_type
        if content_type:
            headers.append(("Content-Type", content_type))
        return headers

    def _grpc_metadata(self, request: InvokeRequest) -> list[tuple[str, str | bytes]]:
        """What a gRPC app gets as metadata: the caller's headers as Dapr converts them, and
        the current span's trace context (the caller's when tracing is off)."""
        trace = self.tracing.carrier(carrier_from(request.headers))
        return [*forwarding.to_grpc_app(request.headers), *grpc_trace_metadata(trace)]

    async def invoke(self, request: InvokeRequest) -> InvokeResult:
        if self.functions is not None and request.app_id in self.functions:
            # a function's own timeout applies unless the call sets a shorter one
            return await self.functions.invoke(request, self._limit(request, None))
        if not request.app_id:
            raise InvalidArgument("InvokeService id (the target app id) is empty")
        if not request.method:
            raise InvalidArgument("InvokeService method (the app's route) is empty")
        try:
            return await self._invoke(request, self._is_remote(request.app_id))
        except PylottoError as err:
            # where the call failed on its way (not the app's answer, which _checked judges)
            err.at("invoke", app_id=request.app_id)
            raise

    async def _invoke(self, request: InvokeRequest, remote: bool) -> InvokeResult:
        if remote:
            answer = await self._call_remote(request)
            return self._checked(request, InvokeResult(answer.data, answer.content_type,
                                                       answer.headers, answer.status,
                                                       answer.data_type_url))
        if self.context.app.is_grpc:
            reply = await self._grpc_channel().invoke(
                request.method, request.data, request.content_type, request.verb,
                request.querystring, self._timeout(request), type_url=request.data_type_url,
                metadata=self._grpc_metadata(request))
            return InvokeResult(reply.data, reply.content_type, reply.headers,
                                data_type_url=reply.type_url)
        channel = self._app_channel()
        app_request = AppRequest(
            verb=self._verb(request.verb),
            path=request.method,
            query=request.querystring,
            headers=self._forwarded(request),
            body=request.data,
            timeout=self._timeout(request),
        )
        response = await channel.send(app_request)
        headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
        return self._checked(request, InvokeResult(response.body, response.content_type,
                                                   headers, response.status))

    async def _call_remote(self, request: InvokeRequest) -> AppAnswer:
        """Through the target's sidecars, under the target's resiliency policies."""
        sidecars = self.sidecars
        assert sidecars is not None
        deadline = time.monotonic() + self._timeout(request)

        async def attempt(limit: float | None) -> AppAnswer:
            left = deadline - time.monotonic()
            with self.tracing.span(f"invoke {request.app_id}", "client",
                                   **span_attributes.invocation(request.app_id,
                                                                request.method)):
                return await sidecars.invoke(AppCall(
                    caller_app_id=self.context.app_id, target_app_id=request.app_id,
                    method=request.method, verb=self._verb(request.verb),
                    querystring=request.querystring,
                    headers=self._traced(forwarding.to_sidecar(request.headers),
                                         request.headers),
                    data=request.data, content_type=request.content_type,
                    timeout=min(limit, left) if limit is not None else left,
                    data_type_url=request.data_type_url))

        return await self.resiliency.call_app(request.app_id, attempt, deadline)

    def _traced(self, kept: list[tuple[str, str]],
                received: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        """``kept`` (the forwarded headers) without trace headers, with the trace context of
        the current span (the caller's own, from ``received``, when tracing is off)."""
        caller = carrier_from(received)
        kept = [(k, v) for k, v in kept if k.lower() not in (TRACEPARENT, TRACESTATE)]
        return kept + list(self.tracing.carrier(caller).items())

    @staticmethod
    def _checked(request: InvokeRequest, result: InvokeResult) -> InvokeResult:
        """The gRPC dialects answer an app status outside 2xx as Unavailable."""
        if not request.pass_status and not 200 <= result.status < 300:
            excerpt = result.data[:ERROR_BODY_EXCERPT].decode("utf-8", errors="replace")
            raise Unavailable(f"http response code {result.status}, body: {excerpt}",
                              where="invoke.answer")
        return result

    async def serve(self, call: AppCall, *, certified_app_id: str | None = None) -> InvokeResult:
        """A call from another sidecar: to this sidecar's app, answer passed back unchanged.
        ``certified_app_id``: the app id in the calling sidecar's client certificate (mTLS;
        None without one) — a caller claiming another app id is refused."""
        if certified_app_id is not None and certified_app_id != call.caller_app_id:
            raise PermissionDenied(f"the caller says it is app {call.caller_app_id!r} but "
                                   f"its certificate names {certified_app_id!r}")
        own = self.context.app_id
        if call.target_app_id != own:
            raise InvalidArgument(f"this sidecar serves app {own!r}, not "
                                  f"{call.target_app_id!r}")
        if self.rate_limiter is not None:
            self.rate_limiter.admit("InvokeService", call.caller_app_id)
        if self.access is not None:
            self.access.check(call.caller_app_id, call.method, call.verb or DEFAULT_VERB,
                              certified_app_id)
        headers = forwarding.served(call.headers, call.caller_app_id)
        return await self.invoke(InvokeRequest(
            app_id=own, method=call.method, data=call.data, content_type=call.content_type,
            verb=call.verb, querystring=call.querystring, headers=headers,
            deadline_seconds=call.timeout, default_timeout_ms=int(call.timeout * 1000) or
            DEFAULT_TIMEOUT_MS, pass_status=True, data_type_url=call.data_type_url))

    async def proxy(self, target_app_id: str, method: str, request: bytes,
                    metadata: Sequence[tuple[str, Any]], time_left: float | None, *,
                    from_sidecar: bool = False, certified_app_id: str | None = None) -> bytes:
        """gRPC proxying: the raw unary call ``method`` to app ``target_app_id`` — this
        sidecar's own app directly, another app through its sidecars. ``metadata``: the
        caller's; ``time_left``: the caller's deadline (None: none, then another app gets
        :data:`DAPR_TIMEOUT_MS`). gRPC errors of the target (``grpc.aio.AioRpcError``) pass
        through. A call to this sidecar's app from another app (``from_sidecar``: it came in
        on the sidecars' mTLS port; or it carries another app's ``dapr-caller-app-id``) goes
        through the access list, with the operation the full method name, as in Dapr.
        ``certified_app_id``: the app id of the calling sidecar's certificate (mTLS)."""
        own = self.context.app_id
        caller = next((v for k, v in metadata if k == CALLER_ID_HEADER), own)
        if target_app_id == own and (from_sidecar or caller != own):
            if certified_app_id is not None and certified_app_id != caller:
                raise PermissionDenied(f"the caller says it is app {caller!r} but its "
                                       f"certificate names {certified_app_id!r}")
            if self.access is not None:
                self.access.check(caller, method, "", certified_app_id)
        forwarded = forwarding.proxied(metadata, caller)
        if target_app_id == own:
            if self._proxy is None:
                raise NotConfigured("gRPC proxying to this sidecar's app needs app.port with "
                                    "app.protocol: grpc or grpcs")
            answer: bytes = await self._proxy.channel().unary_unary(method)(
                request, metadata=forwarded, timeout=time_left)
            return answer
        if self.sidecars is None:
            raise Unsupported(f"cannot proxy to app {target_app_id!r}: no name resolution "
                              "(name_resolution in the configuration)")
        return await self.sidecars.proxy(
            target_app_id, method, request, forwarded,
            within=time_left if time_left is not None else DAPR_TIMEOUT_MS / 1000)
