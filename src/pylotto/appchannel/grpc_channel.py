"""What the gRPC app channels share: one lazily opened channel to the app, the app token as
metadata, and gRPC failures mapped to pylotto errors — UNIMPLEMENTED → Unsupported (the event
is dropped), UNAVAILABLE → Unavailable, DEADLINE_EXCEEDED → DeadlineExceeded, anything else →
Internal."""

from __future__ import annotations

from typing import Any

import grpc

from pylotto.appchannel.base import AppChannel
from pylotto.appchannel.gate import OPEN_GATE, AppGate
from pylotto.core.errors import DeadlineExceeded, Internal, PylottoError, Unavailable, Unsupported
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
    ) -> None:
        self.gate = gate
        """Service invocation passes it (health, concurrency limit)."""
        self.address = f"{host}:{port}"
        self.description = f"app callback at {self.address}"
        self.delivery_timeout = delivery_timeout
        self.list_timeout = list_timeout
        self.metadata = ((TOKEN_HEADER, api_token),) if api_token else None
        self._channel: Any = None
        self._stub: Any = None

    def make_stub(self, channel: grpc.aio.Channel) -> Any:
        raise NotImplementedError

    def stub(self) -> Any:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
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
