"""What the gRPC app channels share: one lazily opened channel to the app, the app token as
metadata, and gRPC failures mapped to pylotto errors — UNIMPLEMENTED → Unsupported (the event
is dropped), UNAVAILABLE → Unavailable, DEADLINE_EXCEEDED → DeadlineExceeded, anything else →
Internal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from pylotto.appchannel.base import AppChannel
from pylotto.appchannel.gate import OPEN_GATE, AppGate
from pylotto.appchannel.tls_relay import TlsRelay
from pylotto.core.errors import DeadlineExceeded, Internal, PylottoError, Unavailable, Unsupported
from pylotto.observability.dapr_metrics import DaprMetrics
from pylotto.observability.grpc_client_metrics import ClientMetrics
from pylotto.security.tokens import TOKEN_HEADER

DELIVERY_TIMEOUT_SECONDS = 60.0
LIST_TIMEOUT_SECONDS = 5.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # The app may come up after the sidecar: keep reconnecting briskly.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class GrpcAppChannel(AppChannel):
    """Base of the gRPC app channels; subclasses say which stub to build."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        delivery_timeout: float = DELIVERY_TIMEOUT_SECONDS,
        list_timeout: float = LIST_TIMEOUT_SECONDS,
        api_token: str = "",
        gate: AppGate = OPEN_GATE,
        tls: bool = False,
    ) -> None:
        self.gate = gate
        self.tls = tls
        """``--app-protocol grpcs``: TLS to the app, its certificate not checked."""
        """Service invocation passes it (health, concurrency limit)."""
        self.address = f"{host}:{port}"
        self.description = f"app callback at {self.address}"
        self.delivery_timeout = delivery_timeout
        self.list_timeout = list_timeout
        self.metadata = ((TOKEN_HEADER, api_token),) if api_token else None
        self._channel: Any = None
        self._stub: Any = None
        self._relay: TlsRelay | None = None

    def make_stub(self, channel: grpc.aio.Channel) -> Any:
        raise NotImplementedError

    observer: DaprMetrics | None = None
    """Where each call is counted (daprd's gRPC client metrics), when set."""

    def stub(self) -> Any:
        if self._stub is None:
            interceptors = (ClientMetrics(self.observer),) if self.observer else ()
            self._channel, self._relay = dial_app(self.address, tls=self.tls,
                                                  interceptors=interceptors)
            self._stub = self.make_stub(self._channel)
        return self._stub

    def error(self, exc: grpc.aio.AioRpcError, method: str) -> PylottoError:
        code, details = exc.code(), exc.details() or ""
        where = f"{self.description}: {method}"
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return Unsupported(f"{where} is not implemented by the app")
        if code == grpc.StatusCode.UNAVAILABLE:
            return Unavailable(f"{where}: app unavailable: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(f"{where}: no answer in time")
        return Internal(f"{where}: app answered {code.name}: {details}")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None
        if self._relay is not None:
            await self._relay.close()
            self._relay = None


def dial_app(address: str, *, tls: bool,
             options: Sequence[tuple[str, Any]] = CHANNEL_OPTIONS,
             interceptors: Sequence[Any] = (),
             ) -> tuple[grpc.aio.Channel, TlsRelay | None]:
    """A channel to the app at ``host:port``: plaintext, or (``tls``, ``grpcs``) through a
    :class:`~pylotto.appchannel.tls_relay.TlsRelay` that speaks TLS to the app without
    checking its certificate, as daprd. Call within the event loop; close the relay after
    the channel."""
    if not tls:
        return grpc.aio.insecure_channel(address, options=list(options),
                                         interceptors=list(interceptors)), None
    host, _, port = address.rpartition(":")
    relay = TlsRelay(host.strip("[]"), int(port))
    return grpc.aio.insecure_channel(relay.address, options=list(options),
                                     interceptors=list(interceptors)), relay
