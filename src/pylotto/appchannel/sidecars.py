"""Calls to other sidecars (service invocation to another app id): name resolution, round
robin over the target's sidecars, and skipping a sidecar that just refused.

A call goes to the next address of the app in turn. A sidecar that answers UNAVAILABLE (it is
down, or its app is) is left out for ``DOWN_SECONDS`` and the call moves on to the next one, up
to every address once; any other answer — the app's status included — is final.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from pylotto.core.errors import APP_STATUS_TRAILER, AppStatus, Unavailable, from_grpc_code
from pylotto.observability.tracing import carrier_from
from pylotto.proto.extensions import invoke_pb2, invoke_pb2_grpc
from pylotto.resolution.base import Resolver

log = logging.getLogger("pylotto.invoke.sidecars")

T = TypeVar("T")
DOWN_SECONDS = 10.0
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


def sidecar_channel(address: str,
                    credentials: tuple[bytes, bytes, bytes] | None) -> grpc.aio.Channel:
    """A channel to another sidecar's internal port: plaintext, or mTLS with ``credentials``
    (CA, certificate, key PEM)."""
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    ca, cert, key = credentials
    return grpc.aio.secure_channel(
        address, grpc.ssl_channel_credentials(ca, key, cert),
        options=[*CHANNEL_OPTIONS,
                 # identities are the certificates' app ids, checked by the target; every
                 # pylotto certificate also names localhost
                 ("grpc.ssl_target_name_override", "localhost")])


@dataclass(frozen=True, slots=True)
class AppCall:
    caller_app_id: str
    target_app_id: str
    method: str
    verb: str
    querystring: str
    headers: Sequence[tuple[str, str]]
    data: bytes
    content_type: str
    timeout: float
    data_type_url: str = ""
    """The protobuf type of ``data`` ("" for raw bytes)."""


@dataclass(frozen=True, slots=True)
class AppAnswer:
    status: int
    data: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    served_by: str = ""
    data_type_url: str = ""
    """The protobuf type of a gRPC app's answer ("" for raw bytes)."""


class SidecarChannel:
    """``credentials``: (CA, certificate, key) PEM for mTLS to the other sidecars' internal
    port; None: plaintext to their gRPC API port."""

    def __init__(self, resolver: Resolver,
                 credentials: tuple[bytes, bytes, bytes] | None = None) -> None:
        self.resolver = resolver
        self.credentials = credentials
        self._stubs: dict[str, Any] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._turn: dict[str, int] = {}
        self._down: dict[str, float] = {}

    def _stub(self, address: str) -> Any:
        stub = self._stubs.get(address)
        if stub is None:
            channel = self._channels[address] = sidecar_channel(address, self.credentials)
            stub = self._stubs[address] = invoke_pb2_grpc.SidecarInvokeStub(channel)
        return stub

    def _order(self, app_id: str, addresses: list[str]) -> list[str]:
        """Up addresses first, starting with the next in turn; down ones last."""
        now = time.monotonic()
        turn = self._turn.get(app_id, 0)
        self._turn[app_id] = turn + 1
        rotated = addresses[turn % len(addresses):] + addresses[:turn % len(addresses)]
        up = [a for a in rotated if self._down.get(a, 0.0) <= now]
        return up + [a for a in rotated if a not in up]

    async def _each_sidecar(self, app_id: str, within: float,
                            send: Callable[[str, float], Awaitable[T]]) -> T:
        """``send(address, seconds left)`` to the app's sidecars in turn until one answers
        something else than UNAVAILABLE (that answer, or its error, is final)."""
        addresses = await self.resolver.resolve(app_id)
        if not addresses:
            raise Unavailable(f"no sidecar of app {app_id!r} is known to name resolution",
                              where="invoke.resolve")
        deadline = time.monotonic() + within
        last: grpc.aio.AioRpcError | None = None
        for address in self._order(app_id, addresses):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                answer = await send(address, left)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                self._down[address] = time.monotonic() + DOWN_SECONDS
                log.warning("sidecar %s of app %s unavailable, trying the next: %s", address,
                            app_id, exc.details())
                last = exc
                continue
            self._down.pop(address, None)
            return answer
        if last is not None:
            raise last
        raise Unavailable(f"app {app_id}: no answer in time")

    async def invoke(self, call: AppCall) -> AppAnswer:
        request = invoke_pb2.AppCall(
            caller_app_id=call.caller_app_id, target_app_id=call.target_app_id,
            method=call.method, verb=call.verb, querystring=call.querystring,
            headers=[invoke_pb2.Header(key=k, value=v) for k, v in call.headers],
            data=call.data, content_type=call.content_type,
            timeout_ms=int(call.timeout * 1000), data_type_url=call.data_type_url)

        trace = tuple(carrier_from(call.headers).items())  # the target's server span parent

        async def send(address: str, left: float) -> AppAnswer:
            answer = await self._stub(address).InvokeApp(request, timeout=left,
                                                         metadata=trace or None)
            return AppAnswer(answer.status, answer.data, answer.content_type,
                             [(h.key, h.value) for h in answer.headers], address,
                             answer.data_type_url)

        try:
            return await self._each_sidecar(call.target_app_id, call.timeout, send)
        except grpc.aio.AioRpcError as exc:
            err = from_grpc_code(exc.code(), f"app {call.target_app_id}: {exc.details()}")
            err.app_status = _app_status(exc)
            raise err from None

    async def proxy(self, app_id: str, method: str, request: bytes,
                    metadata: Sequence[tuple[str, str]], within: float) -> bytes:
        """A raw gRPC call to ``method`` of the app behind one of its sidecars (gRPC
        errors of the target pass through)."""

        async def send(address: str, left: float) -> bytes:
            self._stub(address)  # opens the channel
            call = self._channels[address].unary_unary(method)
            answer: bytes = await call(request, metadata=tuple(metadata), timeout=left)
            return answer

        return await self._each_sidecar(app_id, within, send)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()


def _app_status(exc: grpc.aio.AioRpcError) -> AppStatus | None:
    trailer = dict(exc.trailing_metadata() or ())
    status = trailer.get("grpc-status-details-bin")
    if trailer.get(APP_STATUS_TRAILER) != "1" or not isinstance(status, bytes):
        return None
    return AppStatus(status)
