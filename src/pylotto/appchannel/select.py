"""The app channels of a sidecar, built in this one place from how the app is configured.

Events go to the app (pub/sub delivery) over:

- ``app.grpc_callback_port``: Layotto's AppCallback gRPC (takes precedence);
- ``app.port`` with ``app.protocol: grpc``: Dapr's AppCallback gRPC;
- ``app.port`` (``protocol: http``): Dapr's HTTP app channel (``/dapr/subscribe``);
- neither: no app channel (subscriber streams still work).

Service invocation reaches the app over HTTP (``protocol: http``) or Dapr's AppCallback gRPC
(``protocol: grpc``) on ``app.port``; gRPC proxying (``dapr-app-id`` calls to this sidecar's own
app) over a raw gRPC channel to the same port. Each user has its own connection, as before
this module built them all: closing one never cuts another's calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pylotto.appchannel.base import AppChannel
from pylotto.appchannel.http import HttpAppChannel

if TYPE_CHECKING:
    import grpc

    from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel
    from pylotto.config.model import AppConfig

APP_HOST = "127.0.0.1"


def pubsub_channel(app: AppConfig) -> AppChannel | None:
    """The channel events are delivered to the app over (None: the app has no callback)."""
    token = app.api_token.get_secret_value()
    if app.grpc_callback_port:
        from pylotto.appchannel.layotto_grpc import LayottoGrpcAppChannel

        return LayottoGrpcAppChannel(app.grpc_callback_host, app.grpc_callback_port,
                                     api_token=token)
    if app.port and app.protocol == "grpc":
        from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel

        return DaprGrpcAppChannel(APP_HOST, app.port, api_token=token)
    if app.port:
        from pylotto.appchannel.dapr_http import DaprHttpAppChannel

        return DaprHttpAppChannel(HttpAppChannel(APP_HOST, app.port, api_token=token))
    return None


class RawGrpcAppChannel:
    """A plain gRPC channel to the app, opened on first use (gRPC proxying sends the caller's
    bytes as they are, so no stub)."""

    def __init__(self, host: str, port: int) -> None:
        self.address = f"{host}:{port}"
        self._channel: grpc.aio.Channel | None = None

    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            import grpc

            self._channel = grpc.aio.insecure_channel(self.address)
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


@dataclass(frozen=True)
class AppChannels:
    """Every channel to the app; None where the configuration gives the app no such server."""

    pubsub: AppChannel | None
    """Pub/sub delivery (see :func:`pubsub_channel`)."""
    invoke_http: HttpAppChannel | None
    """Service invocation to an HTTP app (``app.port``, ``protocol: http``)."""
    invoke_grpc: DaprGrpcAppChannel | None
    """Service invocation to a gRPC app (``app.port``, ``protocol: grpc``)."""
    proxy: RawGrpcAppChannel | None
    """gRPC proxying to a gRPC app (``app.port``, ``protocol: grpc``)."""


def app_channels(app: AppConfig) -> AppChannels:
    """The app channels of ``app``; none connects before its first use (or its ``open``)."""
    token = app.api_token.get_secret_value()
    invoke_http = invoke_grpc = proxy = None
    if app.port and app.protocol == "grpc":
        from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel

        invoke_grpc = DaprGrpcAppChannel(APP_HOST, app.port, api_token=token)
        proxy = RawGrpcAppChannel(APP_HOST, app.port)
    elif app.port:
        invoke_http = HttpAppChannel(APP_HOST, app.port, api_token=token)
    return AppChannels(pubsub_channel(app), invoke_http, invoke_grpc, proxy)
